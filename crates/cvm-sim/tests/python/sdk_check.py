"""Drives cvm-sim with the official Tencent Cloud Python SDK.

Usage: python sdk_check.py <endpoint host:port> <secret id> <secret key>
Exits 0 when every check passes; prints one line per check. Covers the CVM actions the
operator creates and observes with, DescribeZoneInstanceConfigInfos (offerings, stock and
prices), the day-2 actions (ModifyInstancesAttribute, StopInstances, ResetInstancesType,
StartInstances) and the Tag service's writes and read.
"""

import json
import sys
import time
import warnings

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client, models
from tencentcloud.tag.v20180813 import models as tag_models
from tencentcloud.tag.v20180813 import tag_client

REGION = "ap-guangzhou"


def profile(endpoint, language="zh-CN"):
    # The constructor calls the scheme `protocol`; it sets `scheme` from it.
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod="POST")
    assert http.scheme == "http"
    return ClientProfile(httpProfile=http, language=language)


def client(endpoint, secret_id, secret_key, region=REGION, language="zh-CN"):
    return cvm_client.CvmClient(
        credential.Credential(secret_id, secret_key),
        region,
        profile(endpoint, language),
    )


def request(model, fields):
    req = model()
    req.from_json_string(json.dumps(fields))
    return req


def describe_one(good, instance_id):
    # Unknown fields would warn: the day-2 fields must have the SDK's names and shapes.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return good.DescribeInstances(
            request(models.DescribeInstancesRequest, {"InstanceIds": [instance_id]})
        ).InstanceSet[0]


def wait_settled(good, instance_id, request_id):
    """Describes until the instance's latest operation is `request_id` and has ended."""
    for _ in range(200):
        instance = describe_one(good, instance_id)
        if (
            instance.LatestOperationRequestId == request_id
            and instance.LatestOperationState != "OPERATING"
        ):
            assert instance.LatestOperationState == "SUCCESS", instance.to_json_string()
            return instance
        time.sleep(0.05)
    raise AssertionError("operation %s did not end" % request_id)


def check_day2(endpoint, secret_id, secret_key, instance_id):
    good = client(endpoint, secret_id, secret_key)
    ids = {"InstanceIds": [instance_id]}

    renamed = good.ModifyInstancesAttribute(
        request(models.ModifyInstancesAttributeRequest, dict(ids, InstanceName="sdk-renamed"))
    )
    assert wait_settled(good, instance_id, renamed.RequestId).InstanceName == "sdk-renamed"
    try:
        good.ModifyInstancesAttribute(
            request(
                models.ModifyInstancesAttributeRequest,
                dict(ids, InstanceName="x", SecurityGroups=["sg-11111111"]),
            )
        )
    except TencentCloudSDKException as e:
        assert e.get_code() == "InvalidParameter", e.get_code()
    else:
        raise AssertionError("two attributes in one call were accepted")
    print("modify attribute ok")

    stopped = good.StopInstances(
        request(models.StopInstancesRequest, dict(ids, StopType="SOFT", StoppedMode="KEEP_CHARGING"))
    )
    instance = wait_settled(good, instance_id, stopped.RequestId)
    assert (instance.InstanceState, instance.StopChargingMode) == ("STOPPED", "KEEP_CHARGING")
    print("stop ok")

    resized = good.ResetInstancesType(
        request(models.ResetInstancesTypeRequest, dict(ids, InstanceType="S5.LARGE8"))
    )
    instance = wait_settled(good, instance_id, resized.RequestId)
    assert (instance.InstanceType, instance.InstanceState) == ("S5.LARGE8", "RUNNING")
    print("reset type ok")

    stopped = good.StopInstances(request(models.StopInstancesRequest, ids))
    assert wait_settled(good, instance_id, stopped.RequestId).InstanceState == "STOPPED"
    started = good.StartInstances(request(models.StartInstancesRequest, ids))
    assert wait_settled(good, instance_id, started.RequestId).InstanceState == "RUNNING"
    print("start ok")

    tags = tag_client.TagClient(
        credential.Credential(secret_id, secret_key), REGION, profile(endpoint)
    )
    resource = "qcs::cvm:%s:uin/:instance/%s" % (REGION, instance_id)
    tags.ModifyResourceTags(
        request(
            tag_models.ModifyResourceTagsRequest,
            {"Resource": resource, "ReplaceTags": [{"TagKey": "env", "TagValue": "prod"}]},
        )
    )
    tags.TagResources(
        request(
            tag_models.TagResourcesRequest,
            {"ResourceList": [resource], "Tags": [{"TagKey": "tier", "TagValue": "web"}]},
        )
    )
    tags.UnTagResources(
        request(tag_models.UnTagResourcesRequest, {"ResourceList": [resource], "TagKeys": ["origin"]})
    )
    read = tags.DescribeResourceTagsByResourceIds(
        request(
            tag_models.DescribeResourceTagsByResourceIdsRequest,
            {
                "ServiceType": "cvm",
                "ResourcePrefix": "instance",
                "ResourceRegion": REGION,
                "ResourceIds": [instance_id],
            },
        )
    )
    pairs = sorted((t.TagKey, t.TagValue) for t in read.Tags)
    assert pairs == [("env", "prod"), ("tier", "web")], pairs
    shown = sorted((t.Key, t.Value) for t in describe_one(good, instance_id).Tags)
    assert shown == pairs, shown
    try:
        tags.ModifyResourceTags(
            request(
                tag_models.ModifyResourceTagsRequest,
                {"Resource": resource, "ReplaceTags": [{"TagKey": "qcloud:x", "TagValue": "v"}]},
            )
        )
    except TencentCloudSDKException as e:
        assert e.get_code() == "InvalidParameter.ReservedTagKey", e.get_code()
    else:
        raise AssertionError("a reserved tag key was accepted")
    print("tags ok", pairs)


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


def check_offerings(endpoint, secret_id, secret_key):
    """DescribeZoneInstanceConfigInfos through the SDK: every field it models, no unknown one."""
    good = client(endpoint, secret_id, secret_key)
    fields = {
        "Filters": [
            {"Name": "zone", "Values": ["ap-guangzhou-3"]},
            {"Name": "instance-charge-type", "Values": ["SPOTPAID"]},
            {"Name": "instance-type", "Values": ["S5.MEDIUM2"]},
        ]
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        answer = good.DescribeZoneInstanceConfigInfos(
            request(models.DescribeZoneInstanceConfigInfosRequest, fields)
        )
    [item] = answer.InstanceTypeQuotaSet
    assert item.Zone == "ap-guangzhou-3", item.to_json_string()
    assert item.InstanceType == "S5.MEDIUM2"
    assert item.InstanceChargeType == "SPOTPAID"
    assert item.InstanceFamily == "S5"
    assert (item.Cpu, item.Memory) == (2, 2)
    assert item.Status == "SELL" and item.StatusCategory == "EnoughStock"
    assert item.Price.ChargeUnit == "HOUR"
    assert abs(item.Price.UnitPrice - 0.18) < 1e-9, item.Price.to_json_string()
    assert abs(item.Price.UnitPriceDiscount - 0.036) < 1e-9
    try:
        good.DescribeZoneInstanceConfigInfos(
            request(
                models.DescribeZoneInstanceConfigInfosRequest,
                {"Filters": [{"Name": "instance-state", "Values": ["RUNNING"]}]},
            )
        )
    except TencentCloudSDKException as e:
        assert e.get_code() == "InvalidFilter", e.get_code()
        print("offerings ok", item.TypeName, item.Price.UnitPriceDiscount, e.get_code())
    else:
        raise AssertionError("an unknown filter was accepted")


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
    check_offerings(endpoint, secret_id, secret_key)

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

    check_day2(endpoint, secret_id, secret_key, ids[0])


if __name__ == "__main__":
    main()
