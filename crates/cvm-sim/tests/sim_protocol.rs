//! cvm-sim over real HTTP: authentication, envelope, RunInstances validation and
//! idempotency, DescribeInstances filters and paging, TerminateInstances errors, the day-2 actions and the Tag service's writes.

mod sim_support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use sim_support::*;

#[tokio::test]
async fn correct_call_succeeds_and_every_auth_failure_has_its_code() {
    let mut config = fast_config();
    config.accounts.push(cvm_sim::config::AccountConfig {
        token: Some("session-token".into()),
        ..account("AKIDtemporary", "tempkey")
    });
    let sim = start(config).await;
    let client = Client::new(&sim);

    let ok = client.call("DescribeInstances", json!({})).await;
    assert_eq!(ok["TotalCount"], 0);
    assert_eq!(ok["InstanceSet"], json!([]));

    // Docs-style signing includes x-tc-action.
    let docs = client
        .call_with(
            "DescribeInstances",
            json!({}),
            Tweaks {
                signed_headers: Some(vec!["content-type", "host", "x-tc-action"]),
                ..Tweaks::default()
            },
        )
        .await;
    assert!(error_code(&docs).is_none(), "{docs}");

    let cases: Vec<(Tweaks, &str)> = vec![
        (
            Tweaks {
                sign_with_key: Some("wrong-key".into()),
                ..Tweaks::default()
            },
            "AuthFailure.SignatureFailure",
        ),
        (
            Tweaks {
                body_after_signing: Some(br#"{"Limit":5}"#.to_vec()),
                ..Tweaks::default()
            },
            "AuthFailure.SignatureFailure",
        ),
        (
            Tweaks {
                timestamp_offset: -301,
                ..Tweaks::default()
            },
            "AuthFailure.SignatureExpire",
        ),
        (
            Tweaks {
                timestamp_offset: 400,
                ..Tweaks::default()
            },
            "AuthFailure.SignatureExpire",
        ),
        (
            Tweaks {
                omit_header: Some("Authorization"),
                ..Tweaks::default()
            },
            "AuthFailure.InvalidAuthorization",
        ),
        (
            Tweaks {
                signed_headers: Some(vec!["host"]),
                ..Tweaks::default()
            },
            "AuthFailure.InvalidAuthorization",
        ),
        (
            Tweaks {
                omit_header: Some("X-TC-Timestamp"),
                ..Tweaks::default()
            },
            "MissingParameter",
        ),
        (
            Tweaks {
                omit_header: Some("X-TC-Region"),
                ..Tweaks::default()
            },
            "MissingParameter",
        ),
        (
            Tweaks {
                omit_header: Some("X-TC-Version"),
                ..Tweaks::default()
            },
            "MissingParameter",
        ),
        (
            Tweaks {
                version: Some("2017-03-11".into()),
                ..Tweaks::default()
            },
            "NoSuchVersion",
        ),
        (
            Tweaks {
                token: Some("unexpected".into()),
                ..Tweaks::default()
            },
            "AuthFailure.TokenFailure",
        ),
    ];
    for (tweaks, code) in cases {
        let response = client
            .call_with("DescribeInstances", json!({}), tweaks)
            .await;
        expect_error(&response, code);
    }

    let unknown = Client::for_account(&sim, "AKIDnobody", "x");
    expect_error(
        &unknown.call("DescribeInstances", json!({})).await,
        "AuthFailure.SecretIdNotFound",
    );
    expect_error(
        &client.call("DescribeSomethingElse", json!({})).await,
        "InvalidAction",
    );

    let mut temporary = Client::for_account(&sim, "AKIDtemporary", "tempkey");
    expect_error(
        &temporary.call("DescribeInstances", json!({})).await,
        "AuthFailure.TokenFailure",
    );
    temporary.token = Some("session-token".into());
    let ok = temporary.call("DescribeInstances", json!({})).await;
    assert!(error_code(&ok).is_none(), "{ok}");
}

#[tokio::test]
async fn client_token_returns_the_same_ids_and_is_limited_to_64_bytes() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let first = run(
        &client,
        json!({"ClientToken": "cvmop-uid-0", "InstanceCount": 2}),
    )
    .await;
    assert_eq!(first.len(), 2);
    let again = run(
        &client,
        json!({"ClientToken": "cvmop-uid-0", "InstanceCount": 2}),
    )
    .await;
    assert_eq!(first, again);
    assert_eq!(sim.admin.instances().await.unwrap().len(), 2);
    let other = run(&client, json!({"ClientToken": "cvmop-uid-1"})).await;
    assert!(!first.contains(&other[0]));

    let listed = sim.admin.instances().await.unwrap();
    assert!(listed.iter().all(|i| {
        i.client_token
            .as_deref()
            .is_some_and(|t| t.starts_with("cvmop-uid-"))
    }));

    let long = "x".repeat(65);
    let response = client
        .call("RunInstances", run_body(json!({"ClientToken": long})))
        .await;
    expect_error(&response, "InvalidClientToken.TooLong");
    let exactly_64 = run(&client, json!({"ClientToken": "y".repeat(64)})).await;
    assert_eq!(exactly_64.len(), 1);
}

#[tokio::test]
async fn run_instances_validates_like_the_real_api() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"ImageId": IMAGE}), "MissingParameter"),
        (json!({"Placement": {"Zone": ZONE}}), "MissingParameter"),
        (
            run_body(json!({"ImageId": "img-1"})),
            "InvalidImageId.Malformed",
        ),
        (
            run_body(json!({"Placement": {"Zone": "ap-shanghai-2"}})),
            "InvalidZone.MismatchRegion",
        ),
        (
            run_body(json!({"InstanceType": "S5MEDIUM2"})),
            "InvalidInstanceType.Malformed",
        ),
        (
            run_body(json!({"InstanceCount": 0})),
            "InvalidParameterValue.Range",
        ),
        (
            run_body(json!({"InstanceCount": 501})),
            "InvalidParameterValue.Range",
        ),
        (
            run_body(json!({"InstanceName": "n".repeat(129)})),
            "InvalidInstanceName.TooLong",
        ),
        (run_body(json!({"Bogus": 1})), "UnknownParameter"),
        (
            run_body(json!({"InstanceCount": "two"})),
            "InvalidParameter",
        ),
        (
            run_body(json!({"InstanceChargeType": "FREE"})),
            "InvalidParameterValue",
        ),
        (
            run_body(json!({"InstanceChargeType": "PREPAID"})),
            "MissingParameter",
        ),
        (
            run_body(
                json!({"InstanceChargeType": "PREPAID", "InstanceChargePrepaid": {"Period": 13}}),
            ),
            "InvalidPeriod",
        ),
        (
            run_body(
                json!({"InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "1"}}}),
            ),
            "InvalidParameterCombination",
        ),
        (
            run_body(
                json!({"InstanceChargeType": "SPOTPAID", "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.001"}}}),
            ),
            "InvalidParameterValue.InsufficientPrice",
        ),
        (
            run_body(
                json!({"InstanceChargeType": "SPOTPAID", "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {}}}),
            ),
            "MissingParameter",
        ),
        (
            // What the operator used to send for a spot instance without a bid.
            run_body(
                json!({"InstanceChargeType": "SPOTPAID", "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": ""}}}),
            ),
            "InvalidParameterValue",
        ),
        (
            run_body(
                json!({"LoginSettings": {"Password": "Qcloud@123456", "KeyIds": ["skey-abcdefgh"]}}),
            ),
            "InvalidParameterCombination",
        ),
        (
            run_body(json!({"LoginSettings": {"Password": "short"}})),
            "InvalidParameterValue.InvalidPassword",
        ),
        (
            run_body(json!({"LoginSettings": {"KeyIds": ["key-1"]}})),
            "InvalidKeyPairId.Malformed",
        ),
        (
            run_body(json!({"SecurityGroupIds": ["sg-1"]})),
            "InvalidSgId.Malformed",
        ),
        (
            run_body(json!({"VirtualPrivateCloud": {"VpcId": "vpc-abcdefgh"}})),
            "MissingParameter",
        ),
        (
            run_body(
                json!({"VirtualPrivateCloud": {"VpcId": "vpc-1", "SubnetId": "subnet-abcdefgh"}}),
            ),
            "InvalidParameterValue.VpcIdMalformed",
        ),
        (
            run_body(
                json!({"VirtualPrivateCloud": {"VpcId": "vpc-abcdefgh", "SubnetId": "subnet-abcdefgh", "PrivateIpAddresses": ["192.168.1.1"]}}),
            ),
            "VpcAddrNotInSubNet",
        ),
        (
            run_body(json!({"UserData": "not base64!"})),
            "InvalidParameterValue.InvalidUserDataFormat",
        ),
        (
            run_body(
                json!({"TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}]}),
            ),
            "InvalidParameterValue.DuplicateTags",
        ),
        (
            run_body(
                json!({"TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "qcloud:x", "Value": "1"}]}]}),
            ),
            "FailedOperation.TagKeyReserved",
        ),
        (
            run_body(
                json!({"InternetAccessible": {"InternetMaxBandwidthOut": 0, "PublicIpAssigned": true}}),
            ),
            "InvalidParameterCombination",
        ),
        (
            run_body(json!({"HostName": "-bad"})),
            "InvalidParameterValue.IllegalHostName",
        ),
        (
            run_body(json!({"DataDisks": [{"DiskType": "CLOUD_SSD"}]})),
            "MissingParameter",
        ),
        (
            run_body(json!({"LaunchTemplate": {"LaunchTemplateId": "lt-abcdefgh"}})),
            "InvalidParameterValue.LaunchTemplateNotFound",
        ),
        (run_body(json!({"DryRun": true})), "DryRunOperation"),
    ];
    for (body, code) in cases {
        let response = client.call("RunInstances", body.clone()).await;
        assert_eq!(
            error_code(&response),
            Some(code),
            "body {body} gave {response}"
        );
    }
    assert!(
        sim.admin.instances().await.unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn run_instances_fills_the_full_instance_shape() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let subnet = "subnet-abcdefgh";
    let base = cvm_sim::state::network::subnet_cidr(subnet).0.octets();
    let pinned = [format!("10.{}.7.7", base[1]), format!("10.{}.7.8", base[1])];
    let ids = run(
        &client,
        json!({
            "InstanceCount": 2,
            "InstanceName": "web-{R:1,F:2}",
            "HostName": "node-{IP}",
            "VirtualPrivateCloud": {"VpcId": "vpc-abcdefgh", "SubnetId": subnet, "PrivateIpAddresses": pinned},
            "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 10},
            "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "cvm-operator.io/uid", "Value": "u1"}]}],
            "LoginSettings": {"KeyIds": ["skey-abcdefgh"]},
            "DataDisks": [{"DiskType": "CLOUD_SSD", "DiskSize": 100}],
            "UserData": "IyEvYmluL3NoCg=="
        }),
    )
    .await;
    let response = describe_ids(&client, &ids).await;
    assert_eq!(response["TotalCount"], 2);
    let first = &response["InstanceSet"][0];
    assert_eq!(first["InstanceId"], ids[0].as_str());
    assert_eq!(first["InstanceName"], "web-01");
    assert_eq!(response["InstanceSet"][1]["InstanceName"], "web-02");
    assert_eq!(first["PrivateIpAddresses"], json!([pinned[0]]));
    assert_eq!(first["Placement"]["Zone"], ZONE);
    assert_eq!(first["CPU"], 2);
    assert_eq!(first["Memory"], 2);
    assert_eq!(first["InstanceChargeType"], "POSTPAID_BY_HOUR");
    assert_eq!(first["VirtualPrivateCloud"]["SubnetId"], subnet);
    assert_eq!(
        first["Tags"],
        json!([{"Key": "cvm-operator.io/uid", "Value": "u1"}])
    );
    assert_eq!(first["LoginSettings"]["KeyIds"], json!(["skey-abcdefgh"]));
    assert_eq!(first["DataDisks"][0]["DiskSize"], 100);
    assert_eq!(first["ExpiredTime"], Value::Null);
    assert_eq!(first["RenewFlag"], Value::Null);
    assert_eq!(first["LatestOperation"], "RunInstances");
    assert!(first["CreatedTime"].as_str().unwrap().ends_with('Z'));
    for field in [
        "IPv6Addresses",
        "PublicIPv6Addresses",
        "GPUInfo",
        "LatestOperationErrorMsg",
    ] {
        assert!(first.get(field).is_some(), "field {field} is present");
    }

    // A pinned address cannot be taken twice.
    let taken = client
        .call(
            "RunInstances",
            run_body(json!({"VirtualPrivateCloud": {"VpcId": "vpc-abcdefgh", "SubnetId": subnet, "PrivateIpAddresses": [pinned[0]]}})),
        )
        .await;
    expect_error(&taken, "VpcIpIsUsed");

    // Without a pattern several instances get the suffix 1…n.
    let plain = run(&client, json!({"InstanceCount": 2, "InstanceName": "srv_"})).await;
    let names: Vec<Value> = describe_ids(&client, &plain).await["InstanceSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceName"].clone())
        .collect();
    assert_eq!(names, vec![json!("srv_1"), json!("srv_2")]);
}

#[tokio::test]
async fn describe_filters_paging_and_errors() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let tagged = |value: &str| json!({"TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": value}]}]});
    let a = run(&client, tagged("a")).await;
    let b = run(&client, tagged("b")).await;
    let mut other_zone = tagged("a");
    other_zone["Placement"] = json!({"Zone": "ap-guangzhou-6"});
    other_zone["InstanceName"] = json!("special-name");
    let c = run(&client, other_zone).await;

    let by_tag = client
        .call(
            "DescribeInstances",
            json!({"Filters": [{"Name": "tag:team", "Values": ["a"]}]}),
        )
        .await;
    let ids: Vec<&str> = by_tag["InstanceSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a[0].as_str(), c[0].as_str()]);

    let filter = |filters: Value| client.call("DescribeInstances", json!({"Filters": filters}));
    let both =
        filter(json!([{"Name": "tag:team", "Values": ["a"]}, {"Name": "zone", "Values": [ZONE]}]))
            .await;
    assert_eq!(both["TotalCount"], 1);
    assert_eq!(both["InstanceSet"][0]["InstanceId"], a[0].as_str());
    let by_name = filter(json!([{"Name": "instance-name", "Values": ["special-name"]}])).await;
    assert_eq!(by_name["InstanceSet"][0]["InstanceId"], c[0].as_str());
    let by_id = filter(json!([{"Name": "instance-id", "Values": [b[0]]}])).await;
    assert_eq!(by_id["TotalCount"], 1);
    let running = filter(json!([{"Name": "instance-state", "Values": ["RUNNING"]}])).await;
    assert_eq!(running["TotalCount"], 3);
    let none = filter(json!([{"Name": "tag:team", "Values": ["zzz"]}])).await;
    assert_eq!(none["TotalCount"], 0);
    expect_error(
        &filter(json!([{"Name": "colour", "Values": ["x"]}])).await,
        "InvalidFilter",
    );
    expect_error(
        &filter(json!([{"Name": "zone", "Values": ["1", "2", "3", "4", "5", "6"]}])).await,
        "InvalidFilterValue.LimitExceeded",
    );

    let page = client
        .call("DescribeInstances", json!({"Offset": 1, "Limit": 1}))
        .await;
    assert_eq!(page["TotalCount"], 3);
    assert_eq!(page["InstanceSet"].as_array().unwrap().len(), 1);
    assert_eq!(page["InstanceSet"][0]["InstanceId"], b[0].as_str());
    expect_error(
        &client
            .call("DescribeInstances", json!({"Limit": 101}))
            .await,
        "InvalidParameterValue.LimitExceeded",
    );
    expect_error(
        &client
            .call(
                "DescribeInstances",
                json!({"InstanceIds": [a[0]], "Filters": [{"Name": "zone", "Values": [ZONE]}]}),
            )
            .await,
        "InvalidParameter",
    );
    expect_error(
        &client
            .call("DescribeInstances", json!({"InstanceIds": ["ins-12"]}))
            .await,
        "InvalidInstanceId.Malformed",
    );
    let too_many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    expect_error(
        &client
            .call("DescribeInstances", json!({"InstanceIds": too_many}))
            .await,
        "InvalidParameterValue.LimitExceeded",
    );
    // Unknown ids give an empty set, not an error.
    let unknown = describe_ids(&client, &["ins-zzzzzzzz".to_string()]).await;
    assert_eq!(unknown["TotalCount"], 0);

    // Instances belong to their region: another region shows none of them.
    let mut shanghai = Client::new(&sim);
    shanghai.region = "ap-shanghai".into();
    assert_eq!(
        shanghai.call("DescribeInstances", json!({})).await["TotalCount"],
        0
    );

    let status = client
        .call(
            "DescribeInstancesStatus",
            json!({"InstanceIds": [a[0], b[0]]}),
        )
        .await;
    assert_eq!(status["TotalCount"], 2);
    assert_eq!(status["InstanceStatusSet"][0]["InstanceId"], a[0].as_str());
    assert_eq!(status["InstanceStatusSet"][0]["InstanceState"], "RUNNING");
    expect_error(
        &client
            .call("DescribeInstancesStatus", json!({"Filters": []}))
            .await,
        "UnknownParameter",
    );
}

#[tokio::test]
async fn terminate_errors_and_effects() {
    let mut config = fast_config();
    config.timing.terminating_seconds = 30.0;
    let sim = start(config).await;
    let client = Client::new(&sim);
    let ids = run(&client, json!({"InstanceCount": 2})).await;
    let terminate = |ids: Value| client.call("TerminateInstances", json!({"InstanceIds": ids}));

    expect_error(
        &terminate(json!(["ins-zzzzzzzz"])).await,
        "InvalidInstanceId.NotFound",
    );
    expect_error(
        &terminate(json!(["bad"])).await,
        "InvalidInstanceId.Malformed",
    );
    expect_error(&terminate(json!([])).await, "MissingParameter");
    let too_many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    expect_error(
        &terminate(json!(too_many)).await,
        "InvalidParameterValue.LimitExceeded",
    );

    let ok = terminate(json!([ids[0]])).await;
    assert!(error_code(&ok).is_none(), "{ok}");
    let described = describe_ids(&client, &ids[..1]).await;
    assert_eq!(described["InstanceSet"][0]["InstanceState"], "TERMINATING");
    expect_error(
        &terminate(json!([ids[0]])).await,
        "UnsupportedOperation.InstanceStateTerminating",
    );
    // A batch with one bad id changes nothing.
    expect_error(
        &terminate(json!([ids[1], "ins-zzzzzzzz"])).await,
        "InvalidInstanceId.NotFound",
    );
    let second = describe_ids(&client, &ids[1..]).await;
    assert_eq!(second["InstanceSet"][0]["InstanceState"], "RUNNING");

    let states: HashSet<String> = sim
        .admin
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.instance_state)
        .collect();
    assert_eq!(
        states,
        HashSet::from(["TERMINATING".to_string(), "RUNNING".to_string()])
    );
}

#[tokio::test]
async fn https_serves_the_same_api_with_a_trusted_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certificate = cvm_sim::tls::self_signed().unwrap();
    let (addr, handle) = cvm_sim::Server::bind_with_tls(
        fast_config(),
        "127.0.0.1:0".parse().unwrap(),
        Some(certificate.acceptor),
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certificate.cert_pem.as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let response = http
        .get(format!("https://127.0.0.1:{}/_sim/healthz", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    handle.shutdown();
}

/// The keys of every object in `set`, which must be exactly `keys` (the real shapes).
fn assert_shape(set: &Value, keys: &[&str]) {
    for entry in set.as_array().expect("a set") {
        let mut found: Vec<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        found.sort_unstable();
        let mut expected = keys.to_vec();
        expected.sort_unstable();
        assert_eq!(found, expected, "{entry}");
    }
}

#[tokio::test]
async fn regions_and_zones_come_from_the_public_catalogue() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);

    let regions = client.call("DescribeRegions", json!({})).await;
    assert_eq!(regions["TotalCount"], 19, "{regions}");
    assert_shape(
        &regions["RegionSet"],
        &["Region", "RegionName", "RegionState"],
    );
    let set = regions["RegionSet"].as_array().unwrap();
    assert_eq!(set.len(), 19);
    let guangzhou = set.iter().find(|r| r["Region"] == REGION).unwrap();
    assert_eq!(guangzhou["RegionName"], "华南地区(广州)");
    assert_eq!(guangzhou["RegionState"], "AVAILABLE");
    for region in [
        "ap-shanghai",
        "ap-shanghai-fsi",
        "na-siliconvalley",
        "eu-frankfurt",
    ] {
        assert!(set.iter().any(|r| r["Region"] == region), "{region}");
    }

    let zones = client.call("DescribeZones", json!({})).await;
    assert_shape(
        &zones["ZoneSet"],
        &["Zone", "ZoneName", "ZoneId", "ZoneState"],
    );
    let names: Vec<&str> = zones["ZoneSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["Zone"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ap-guangzhou-1",
            "ap-guangzhou-2",
            "ap-guangzhou-3",
            "ap-guangzhou-4",
            "ap-guangzhou-6",
            "ap-guangzhou-7"
        ]
    );
    assert_eq!(zones["TotalCount"], 6);
    let three = &zones["ZoneSet"][2];
    assert_eq!(three["ZoneName"], "广州三区");
    assert_eq!(three["ZoneId"], "100003");
    assert_eq!(three["ZoneState"], "AVAILABLE");
    assert_eq!(zones["ZoneSet"][0]["ZoneState"], "UNAVAILABLE", "sold out");
    let english = client
        .call_with(
            "DescribeZones",
            json!({}),
            Tweaks {
                language: Some("en-US"),
                ..Tweaks::default()
            },
        )
        .await;
    assert_eq!(english["ZoneSet"][2]["ZoneName"], "Guangzhou Zone 3");
    expect_error(
        &client.call("DescribeZones", json!({"Foo": 1})).await,
        "UnknownParameter",
    );

    // An unknown region is refused on every action, before anything is created.
    let mut nowhere = Client::new(&sim);
    nowhere.region = "xx-nowhere".into();
    for action in [
        "RunInstances",
        "DescribeInstances",
        "DescribeInstancesStatus",
        "TerminateInstances",
        "DescribeRegions",
        "DescribeZones",
    ] {
        let body = if action == "RunInstances" {
            run_body(json!({"Placement": {"Zone": "xx-nowhere-1"}}))
        } else {
            json!({})
        };
        expect_error(&nowhere.call(action, body).await, "UnsupportedRegion");
    }

    // RunInstances: a zone must be one of the request's region.
    for (region, zone, code) in [
        (REGION, "ap-guangzhou-5", "InvalidZone.MismatchRegion"),
        (REGION, "ap-shanghai-2", "InvalidZone.MismatchRegion"),
        (
            "ap-shanghai",
            "ap-shanghai-fsi-2",
            "InvalidZone.MismatchRegion",
        ),
        (
            REGION,
            "ap-guangzhou-1",
            "ResourceInsufficient.AvailabilityZoneSoldOut",
        ),
    ] {
        let mut client = Client::new(&sim);
        client.region = region.into();
        let response = client
            .call(
                "RunInstances",
                run_body(json!({"Placement": {"Zone": zone}})),
            )
            .await;
        expect_error(&response, code);
    }
    let mut shanghai = Client::new(&sim);
    shanghai.region = "ap-shanghai".into();
    let ids = run(&shanghai, json!({"Placement": {"Zone": "ap-shanghai-2"}})).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(sim.admin.instances().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_config_catalogue_replaces_the_public_one() {
    let mut config = fast_config();
    config.regions = Some(
        serde_json::from_value(json!([
            {"region": "xx-test", "regionName": "Test region",
             "zones": [{"zone": "xx-test-1", "zoneName": "Test zone 1", "zoneId": "990001"}]}
        ]))
        .unwrap(),
    );
    let sim = start(config).await;
    let mut client = Client::new(&sim);
    expect_error(
        &client.call("DescribeRegions", json!({})).await,
        "UnsupportedRegion",
    );
    client.region = "xx-test".into();
    let regions = client.call("DescribeRegions", json!({})).await;
    assert_eq!(
        regions,
        json!({"TotalCount": 1, "RegionSet": [{"Region": "xx-test", "RegionName": "Test region", "RegionState": "AVAILABLE"}],
               "RequestId": regions["RequestId"]})
    );
    let zones = client.call("DescribeZones", json!({})).await;
    assert_eq!(
        zones["ZoneSet"],
        json!([{"Zone": "xx-test-1", "ZoneName": "Test zone 1", "ZoneId": "990001", "ZoneState": "AVAILABLE"}])
    );
    run(&client, json!({"Placement": {"Zone": "xx-test-1"}})).await;
}

/// Waits until the instance's latest operation is no longer OPERATING.
async fn settled(client: &Client, id: &str) -> Value {
    wait_for(client, id, Duration::from_secs(5), |i| {
        i.is_some_and(|i| i["LatestOperationState"] != "OPERATING")
    })
    .await
    .unwrap()
}

async fn running_instance(client: &Client, extra: Value) -> String {
    let id = run(client, extra).await.remove(0);
    wait_for(client, &id, Duration::from_secs(5), state_is("RUNNING")).await;
    id
}

#[tokio::test]
async fn day2_actions_validate_and_refuse_like_the_real_api() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let id = running_instance(&client, json!({})).await;
    let ids = json!([id]);

    let none = client
        .call("ModifyInstancesAttribute", json!({"InstanceIds": ids}))
        .await;
    expect_error(&none, "MissingParameter");
    let two = client
        .call(
            "ModifyInstancesAttribute",
            json!({"InstanceIds": ids, "InstanceName": "a", "SecurityGroups": ["sg-11111111"]}),
        )
        .await;
    expect_error(&two, "InvalidParameter");
    let bad_group = client
        .call(
            "ModifyInstancesAttribute",
            json!({"InstanceIds": ids, "SecurityGroups": ["sg-1"]}),
        )
        .await;
    expect_error(&bad_group, "InvalidSgId.Malformed");

    let groups = client
        .call(
            "ModifyInstancesAttribute",
            json!({"InstanceIds": ids, "SecurityGroups": ["sg-22222222", "sg-11111111"]}),
        )
        .await;
    assert!(error_code(&groups).is_none(), "{groups}");
    let renamed = client
        .call(
            "ModifyInstancesAttribute",
            json!({"InstanceIds": ids, "InstanceName": "renamed"}),
        )
        .await;
    let shown = settled(&client, &id).await;
    assert_eq!(shown["InstanceName"], "renamed");
    assert_eq!(
        shown["SecurityGroupIds"],
        json!(["sg-22222222", "sg-11111111"])
    );
    assert_eq!(shown["LatestOperation"], "ModifyInstancesAttribute");
    assert_eq!(shown["LatestOperationState"], "SUCCESS");
    assert_eq!(shown["LatestOperationRequestId"], renamed["RequestId"]);

    let two_ids = client
        .call(
            "ResetInstancesType",
            json!({"InstanceIds": [id, "ins-00000000"], "InstanceType": "S5.LARGE8"}),
        )
        .await;
    expect_error(&two_ids, "InvalidParameterValue.LimitExceeded");
    let running = client
        .call(
            "ResetInstancesType",
            json!({"InstanceIds": ids, "InstanceType": "S5.LARGE8"}),
        )
        .await;
    expect_error(&running, "UnsupportedOperation.InstanceStateRunning");
    let password = client
        .call(
            "ResetInstancesPassword",
            json!({"InstanceIds": ids, "Password": "Qcloud@Test123"}),
        )
        .await;
    expect_error(&password, "UnsupportedOperation.InstanceStateRunning");
    let forced = client
        .call(
            "ResetInstancesType",
            json!({"InstanceIds": ids, "InstanceType": "S5.LARGE8", "ForceStop": true}),
        )
        .await;
    assert!(error_code(&forced).is_none(), "{forced}");
    let shown = settled(&client, &id).await;
    assert_eq!(
        (&shown["InstanceType"], &shown["CPU"], &shown["Memory"]),
        (&json!("S5.LARGE8"), &json!(4), &json!(8))
    );
    assert_eq!(shown["InstanceState"], "RUNNING");

    let both = client
        .call(
            "StopInstances",
            json!({"InstanceIds": ids, "ForceStop": true, "StopType": "HARD"}),
        )
        .await;
    expect_error(&both, "InvalidParameterCombination");
    let stop = client
        .call("StopInstances", json!({"InstanceIds": ids}))
        .await;
    assert!(error_code(&stop).is_none(), "{stop}");
    let stopped = settled(&client, &id).await;
    assert_eq!(stopped["InstanceState"], "STOPPED");
    assert_eq!(stopped["StopChargingMode"], "KEEP_CHARGING");
    let again = client
        .call("StopInstances", json!({"InstanceIds": ids}))
        .await;
    expect_error(&again, "UnsupportedOperation.InstanceStateStopped");

    // A type change on a stopped instance starts it: it always ends RUNNING.
    let offline = client
        .call(
            "ResetInstancesType",
            json!({"InstanceIds": ids, "InstanceType": "S5.MEDIUM4"}),
        )
        .await;
    assert!(error_code(&offline).is_none(), "{offline}");
    let shown = settled(&client, &id).await;
    assert_eq!(shown["InstanceState"], "RUNNING");
    assert_eq!(shown["StopChargingMode"], "NOT_APPLICABLE");
    let start = client
        .call("StartInstances", json!({"InstanceIds": ids}))
        .await;
    expect_error(&start, "UnsupportedOperation.InstanceStateRunning");

    let shrink = client
        .call(
            "ResizeInstanceDisks",
            json!({"InstanceId": id, "SystemDisk": {"DiskSize": 20}, "ResizeOnline": true}),
        )
        .await;
    expect_error(&shrink, "InvalidParameterValue");
    let grow = client
        .call(
            "ResizeInstanceDisks",
            json!({"InstanceId": id, "SystemDisk": {"DiskSize": 80}, "ResizeOnline": true}),
        )
        .await;
    assert!(error_code(&grow).is_none(), "{grow}");
    assert_eq!(settled(&client, &id).await["SystemDisk"]["DiskSize"], 80);

    for (action, body, field, expected) in [
        (
            "ModifyInstancesProject",
            json!({"InstanceIds": ids, "ProjectId": 7}),
            "/Placement/ProjectId",
            json!(7),
        ),
        (
            "ResetInstancesInternetMaxBandwidth",
            json!({"InstanceIds": ids, "InternetAccessible": {"InternetMaxBandwidthOut": 30}}),
            "/InternetAccessible/InternetMaxBandwidthOut",
            json!(30),
        ),
        (
            "AssociateInstancesKeyPairs",
            json!({"InstanceIds": ids, "KeyIds": ["skey-11111111", "skey-22222222"], "ForceStop": true}),
            "/LoginSettings/KeyIds",
            json!(["skey-11111111", "skey-22222222"]),
        ),
        (
            "DisassociateInstancesKeyPairs",
            json!({"InstanceIds": ids, "KeyIds": ["skey-11111111"], "ForceStop": true}),
            "/LoginSettings/KeyIds",
            json!(["skey-22222222"]),
        ),
    ] {
        let answer = client.call(action, body).await;
        assert!(error_code(&answer).is_none(), "{action}: {answer}");
        let shown = settled(&client, &id).await;
        assert_eq!(shown.pointer(field), Some(&expected), "{action}: {shown}");
        assert_eq!(shown["LatestOperation"], action);
    }
    let missing = client
        .call("RebootInstances", json!({"InstanceIds": ["ins-00000000"]}))
        .await;
    expect_error(&missing, "InvalidInstanceId.NotFound");
}

#[tokio::test]
async fn stop_charging_releases_the_public_ip_and_only_start_works_meanwhile() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let id = running_instance(
        &client,
        json!({"InternetAccessible": {"InternetMaxBandwidthOut": 10}}),
    )
    .await;
    let ids = json!([id]);
    let before = wait_for(&client, &id, Duration::from_secs(5), |i| {
        i.is_some_and(|i| i["PublicIpAddresses"].is_array())
    })
    .await
    .unwrap()["PublicIpAddresses"][0]
        .clone();

    let stop = client
        .call(
            "StopInstances",
            json!({"InstanceIds": ids, "StopType": "SOFT_FIRST", "StoppedMode": "STOP_CHARGING"}),
        )
        .await;
    assert!(error_code(&stop).is_none(), "{stop}");
    let stopped = settled(&client, &id).await;
    assert_eq!(stopped["InstanceState"], "STOPPED");
    assert_eq!(stopped["StopChargingMode"], "STOP_CHARGING");
    assert_eq!(stopped["PublicIpAddresses"], Value::Null);

    for (action, body) in [
        (
            "ModifyInstancesAttribute",
            json!({"InstanceIds": ids, "InstanceName": "x"}),
        ),
        (
            "ResetInstancesType",
            json!({"InstanceIds": ids, "InstanceType": "S5.LARGE8"}),
        ),
        ("ResetInstance", json!({"InstanceId": id})),
        (
            "ResetInstancesInternetMaxBandwidth",
            json!({"InstanceIds": ids, "InternetAccessible": {"InternetMaxBandwidthOut": 1}}),
        ),
        ("StopInstances", json!({"InstanceIds": ids})),
    ] {
        let refused = client.call(action, body).await;
        expect_error(&refused, "UnsupportedOperation.StoppedModeStopCharging");
    }

    // Its CPU and memory were given back: without stock it cannot start.
    sim.admin
        .set_capacity(ZONE, "S5.MEDIUM2", Some(0))
        .await
        .unwrap();
    let no_stock = client
        .call("StartInstances", json!({"InstanceIds": ids}))
        .await;
    expect_error(&no_stock, "ResourceInsufficient.SpecifiedInstanceType");
    sim.admin
        .set_capacity(ZONE, "S5.MEDIUM2", None)
        .await
        .unwrap();
    let start = client
        .call("StartInstances", json!({"InstanceIds": ids}))
        .await;
    assert!(error_code(&start).is_none(), "{start}");
    let running = settled(&client, &id).await;
    assert_eq!(running["InstanceState"], "RUNNING");
    assert_eq!(running["StopChargingMode"], "NOT_APPLICABLE");
    let after = running["PublicIpAddresses"][0].clone();
    assert!(after.is_string(), "a public IP again: {running}");
    assert_ne!(after, before, "a new public IP after STOP_CHARGING");

    let spot = running_instance(
        &client,
        json!({"InstanceChargeType": "SPOTPAID",
               "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "1"}}}),
    )
    .await;
    let refused = client
        .call(
            "StopInstances",
            json!({"InstanceIds": [spot], "StoppedMode": "STOP_CHARGING"}),
        )
        .await;
    expect_error(&refused, "UnsupportedOperation.InstanceChargeType");
}

#[tokio::test]
async fn tag_service_writes_show_in_describe_instances_and_its_filters() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let id = running_instance(&client, json!({})).await;
    let resource = format!("qcs::cvm:{REGION}:uin/:instance/{id}");

    let set = call_tag(
        &client,
        "ModifyResourceTags",
        json!({"Resource": resource, "ReplaceTags": [
            {"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "a"}]}),
    )
    .await;
    assert!(error_code(&set).is_none(), "{set}");
    let tagged = call_tag(
        &client,
        "TagResources",
        json!({"ResourceList": [format!("qcs::cvm:{REGION}:uin/100012345678:instance/{id}")],
               "Tags": [{"TagKey": "owner", "TagValue": "ns/web"}]}),
    )
    .await;
    assert!(error_code(&tagged).is_none(), "{tagged}");
    let untagged = call_tag(
        &client,
        "UnTagResources",
        json!({"ResourceList": [resource], "TagKeys": ["team"]}),
    )
    .await;
    assert!(error_code(&untagged).is_none(), "{untagged}");

    let shown = describe_one(&client, &id).await;
    let mut tags: Vec<(String, String)> = shown["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().to_string(),
                t["Value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("env".to_string(), "prod".to_string()),
            ("owner".to_string(), "ns/web".to_string())
        ]
    );
    let found = client
        .call(
            "DescribeInstances",
            json!({"Filters": [{"Name": "tag:owner", "Values": ["ns/web"]}]}),
        )
        .await;
    assert_eq!(found["TotalCount"], 1, "{found}");
    let gone = client
        .call(
            "DescribeInstances",
            json!({"Filters": [{"Name": "tag:team", "Values": ["a"]}]}),
        )
        .await;
    assert_eq!(gone["TotalCount"], 0, "{gone}");
    let read = call_tag(
        &client,
        "DescribeResourceTagsByResourceIds",
        json!({"ServiceType": "cvm", "ResourcePrefix": "instance",
               "ResourceRegion": REGION, "ResourceIds": [id]}),
    )
    .await;
    assert_eq!(read["TotalCount"], 2, "{read}");

    for (body, code) in [
        (
            json!({"Resource": resource, "ReplaceTags": [{"TagKey": "qcloud:x", "TagValue": "v"}]}),
            "InvalidParameter.ReservedTagKey",
        ),
        (
            json!({"Resource": format!("cvm:{REGION}:instance/{id}"), "DeleteTags": [{"TagKey": "env"}]}),
            "InvalidParameterValue.ResourceDescriptionError",
        ),
        (
            json!({"Resource": resource, "ReplaceTags": (0..11)
                .map(|i| json!({"TagKey": format!("k{i}"), "TagValue": "v"}))
                .collect::<Vec<_>>()}),
            "LimitExceeded.TagNumPerRequest",
        ),
        (
            json!({"Resource": resource,
                   "ReplaceTags": [{"TagKey": "env", "TagValue": "x"}],
                   "DeleteTags": [{"TagKey": "env"}]}),
            "InvalidParameterValue.DeleteTagsParamError",
        ),
        (json!({"Resource": resource}), "MissingParameter"),
    ] {
        expect_error(&call_tag(&client, "ModifyResourceTags", body).await, code);
    }
    let too_many = call_tag(
        &client,
        "UnTagResources",
        json!({"ResourceList": vec![resource.clone(); 11], "TagKeys": ["env"]}),
    )
    .await;
    expect_error(&too_many, "LimitExceeded.ResourceNumPerRequest");
}

const QUOTA_ITEM_KEYS: &[&str] = &[
    "Zone",
    "InstanceType",
    "InstanceChargeType",
    "NetworkCard",
    "Externals",
    "Cpu",
    "Memory",
    "InstanceFamily",
    "TypeName",
    "LocalDiskTypeList",
    "Status",
    "Price",
    "SoldOutReason",
    "InstanceBandwidth",
    "InstancePps",
    "StorageBlockAmount",
    "CpuType",
    "Gpu",
    "Fpga",
    "Remark",
    "GpuCount",
    "Frequency",
    "StatusCategory",
];

fn filters(pairs: &[(&str, &[&str])]) -> Value {
    json!({"Filters": pairs.iter().map(|(name, values)| json!({"Name": name, "Values": values})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn zone_instance_config_infos_sell_the_catalogue_with_stock_and_prices() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    const ACTION: &str = "DescribeZoneInstanceConfigInfos";

    let all = client.call(ACTION, json!({})).await;
    let set = all["InstanceTypeQuotaSet"].as_array().expect("a set");
    assert_shape(&all["InstanceTypeQuotaSet"], QUOTA_ITEM_KEYS);
    // Every zone of the region, pay-as-you-go and spot.
    let zones: HashSet<&str> = set.iter().map(|i| i["Zone"].as_str().unwrap()).collect();
    assert_eq!(zones.len(), 6, "{zones:?}");
    let charges: HashSet<&str> = set
        .iter()
        .map(|i| i["InstanceChargeType"].as_str().unwrap())
        .collect();
    assert_eq!(charges, HashSet::from(["POSTPAID_BY_HOUR", "SPOTPAID"]));
    let find = |set: &Value, zone: &str, charge: &str| -> Value {
        set["InstanceTypeQuotaSet"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| {
                i["Zone"] == zone
                    && i["InstanceType"] == "S5.MEDIUM2"
                    && i["InstanceChargeType"] == charge
            })
            .cloned()
            .unwrap_or_else(|| panic!("no S5.MEDIUM2 {charge} in {zone}"))
    };
    let paygo = find(&all, ZONE, "POSTPAID_BY_HOUR");
    assert_eq!(
        (paygo["Cpu"].as_i64(), paygo["Memory"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(paygo["InstanceFamily"], "S5");
    assert_eq!(paygo["Status"], "SELL");
    assert_eq!(paygo["StatusCategory"], "EnoughStock");
    assert_eq!(
        paygo["Price"],
        json!({"UnitPrice": 0.18, "UnitPriceDiscount": 0.18, "Discount": 100.0, "ChargeUnit": "HOUR"})
    );
    let spot = find(&all, ZONE, "SPOTPAID");
    assert_eq!(spot["Price"]["UnitPrice"], 0.18);
    assert_eq!(spot["Price"]["UnitPriceDiscount"], 0.036, "SPOT_DISCOUNT");
    let sold_out_zone = find(&all, "ap-guangzhou-1", "POSTPAID_BY_HOUR");
    assert_eq!(sold_out_zone["Status"], "SOLD_OUT");
    assert_eq!(sold_out_zone["StatusCategory"], "WithoutStock");
    assert_ne!(sold_out_zone["SoldOutReason"], "");

    // Stock follows capacity, per pool: spot sold out here, little regular stock left.
    sim.admin
        .set_capacity_entry(&cvm_sim::config::CapacityEntry {
            zone: ZONE.into(),
            instance_type: "S5.MEDIUM2".into(),
            charge_type: Some(cvm_sim::config::StockPool::Spot),
            available: Some(0),
        })
        .await
        .unwrap();
    sim.admin
        .set_capacity(ZONE, "S5.MEDIUM2", Some(3))
        .await
        .unwrap();
    let now = client.call(ACTION, json!({})).await;
    let spot = find(&now, ZONE, "SPOTPAID");
    assert_eq!(
        (&spot["Status"], &spot["StatusCategory"]),
        (&json!("SOLD_OUT"), &json!("WithoutStock"))
    );
    let paygo = find(&now, ZONE, "POSTPAID_BY_HOUR");
    assert_eq!(
        (&paygo["Status"], &paygo["StatusCategory"]),
        (&json!("SELL"), &json!("UnderStock"))
    );
    assert_eq!(
        find(&now, "ap-guangzhou-4", "SPOTPAID")["StatusCategory"],
        "EnoughStock"
    );

    // Filters narrow; sort-keys order.
    let narrow = client
        .call(
            ACTION,
            filters(&[
                ("zone", &[ZONE]),
                ("instance-charge-type", &["SPOTPAID"]),
                ("instance-family", &["S5", "SA2"]),
                ("sort-keys", &["mem:desc", "cpu:asc"]),
            ]),
        )
        .await;
    let items = narrow["InstanceTypeQuotaSet"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|i| i["Zone"] == ZONE && i["InstanceChargeType"] == "SPOTPAID")
    );
    assert!(
        items
            .iter()
            .all(|i| i["InstanceFamily"] == "S5" || i["InstanceFamily"] == "SA2")
    );
    let order: Vec<(i64, i64)> = items
        .iter()
        .map(|i| (-i["Memory"].as_i64().unwrap(), i["Cpu"].as_i64().unwrap()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "memory descending, then cpu ascending");
    let one = client
        .call(
            ACTION,
            filters(&[
                ("instance-type", &["S5.LARGE8"]),
                ("zone", &["ap-guangzhou-4"]),
            ]),
        )
        .await;
    assert_eq!(
        one["InstanceTypeQuotaSet"].as_array().unwrap().len(),
        2,
        "both charge types"
    );
    let none = client
        .call(ACTION, filters(&[("zone", &["ap-shanghai-2"])]))
        .await;
    assert_eq!(
        none["InstanceTypeQuotaSet"],
        json!([]),
        "zones of other regions match nothing"
    );

    // Validation as the real API: filter names, counts and values, parameters.
    expect_error(
        &client
            .call(ACTION, filters(&[("instance-state", &["RUNNING"])]))
            .await,
        "InvalidFilter",
    );
    let eleven: Vec<(&str, &[&str])> = (0..11).map(|_| ("zone", &[ZONE][..])).collect();
    expect_error(
        &client.call(ACTION, filters(&eleven)).await,
        "InvalidParameterValue.LimitExceeded",
    );
    let many: Vec<String> = (0..101).map(|i| format!("ap-guangzhou-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    expect_error(
        &client.call(ACTION, filters(&[("zone", &many)])).await,
        "InvalidFilterValue.LimitExceeded",
    );
    let hundred = &many[..100];
    let ok = client.call(ACTION, filters(&[("zone", hundred)])).await;
    assert!(error_code(&ok).is_none(), "100 values are allowed: {ok}");
    expect_error(
        &client
            .call(ACTION, filters(&[("sort-keys", &["price:asc"])]))
            .await,
        "InvalidParameterValue",
    );
    expect_error(
        &client.call(ACTION, json!({"Limit": 1})).await,
        "UnknownParameter",
    );

    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get(ACTION, "Success"), 6);
    assert_eq!(counters.get(ACTION, "InvalidFilter"), 1);
}
