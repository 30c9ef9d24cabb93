"""Drives cvm-sim with the official Tencent Cloud Python SDK.

Usage: python sdk_check.py <endpoint host:port> <secret id> <secret key>
Exits 0 when every check passes; prints one line per check.
"""

import json
import sys
import warnings

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client, models

REGION = "ap-guangzhou"


def client(endpoint, secret_id, secret_key, region=REGION, language="zh-CN"):
    # The constructor calls the scheme `protocol`; it sets `scheme` from it.
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod="POST")
    assert http.scheme == "http"
    return cvm_client.CvmClient(
        credential.Credential(secret_id, secret_key),
        region,
        ClientProfile(httpProfile=http, language=language),
    )


def check_regions_and_zones(endpoint, secret_id, secret_key):
    good = client(endpoint, secret_id, secret_key)
    # The SDK's models warn about fields they do not know: the shapes must match exactly.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regions = good.DescribeRegions(models.DescribeRegionsRequest())
        zones = good.DescribeZones(models.DescribeZonesRequest())
        english = client(endpoint, secret_id, secret_key, language="en-US").DescribeZones(
            models.DescribeZonesRequest()
        )
    assert regions.TotalCount == len(regions.RegionSet) == 19, regions.to_json_string()
    guangzhou = [r for r in regions.RegionSet if r.Region == REGION][0]
    assert (guangzhou.RegionName, guangzhou.RegionState) == ("华南地区(广州)", "AVAILABLE")
    print("regions ok", regions.TotalCount)

    by_zone = {z.Zone: z for z in zones.ZoneSet}
    assert zones.TotalCount == len(by_zone) == 6, zones.to_json_string()
    three = by_zone["ap-guangzhou-3"]
    assert (three.ZoneName, three.ZoneId, three.ZoneState) == ("广州三区", "100003", "AVAILABLE")
    assert by_zone["ap-guangzhou-1"].ZoneState == "UNAVAILABLE"
    assert [z.ZoneName for z in english.ZoneSet if z.Zone == "ap-guangzhou-3"] == ["Guangzhou Zone 3"]
    print("zones ok", sorted(by_zone))

    nowhere = client(endpoint, secret_id, secret_key, region="xx-nowhere")
    try:
        nowhere.DescribeZones(models.DescribeZonesRequest())
    except TencentCloudSDKException as e:
        assert e.get_code() == "UnsupportedRegion", e.get_code()
        print("unknown region refused", e.get_code())
    else:
        raise AssertionError("an unknown region was accepted")


def run_request(token):
    req = models.RunInstancesRequest()
    req.from_json_string(
        json.dumps(
            {
                "Placement": {"Zone": "ap-guangzhou-3"},
                "ImageId": "img-eb30mz89",
                "InstanceType": "S5.MEDIUM2",
                "InstanceCount": 2,
                "ClientToken": token,
                "InstanceName": "sdk-{R:1}",
                "TagSpecification": [
                    {"ResourceType": "instance", "Tags": [{"Key": "origin", "Value": "python-sdk"}]}
                ],
            }
        )
    )
    return req


def main():
    endpoint, secret_id, secret_key = sys.argv[1:4]
    good = client(endpoint, secret_id, secret_key)
    check_regions_and_zones(endpoint, secret_id, secret_key)

    first = good.RunInstances(run_request("python-sdk-token-1"))
    ids = list(first.InstanceIdSet)
    assert len(ids) == 2, ids
    print("run ok", ids)

    describe = models.DescribeInstancesRequest()
    describe.InstanceIds = ids
    described = good.DescribeInstances(describe)
    assert described.TotalCount == 2, described.to_json_string()
    names = sorted(i.InstanceName for i in described.InstanceSet)
    assert names == ["sdk-1", "sdk-2"], names
    assert all(i.Placement.Zone == "ap-guangzhou-3" for i in described.InstanceSet)
    assert all(i.PrivateIpAddresses for i in described.InstanceSet)
    print("describe ok", names)

    again = good.RunInstances(run_request("python-sdk-token-1"))
    assert list(again.InstanceIdSet) == ids, (list(again.InstanceIdSet), ids)
    print("client token ok")

    bad = client(endpoint, secret_id, secret_key + "x")
    try:
        bad.DescribeInstances(models.DescribeInstancesRequest())
    except TencentCloudSDKException as e:
        assert e.get_code() == "AuthFailure.SignatureFailure", e.get_code()
        assert e.get_request_id(), "the error carries a RequestId"
        print("wrong key refused", e.get_code())
    else:
        raise AssertionError("a wrong key was accepted")


if __name__ == "__main__":
    main()
