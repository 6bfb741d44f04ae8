"""What the AWS tests do to moto behind infra's back, and how they look at it.

    aws_inspect.py ENDPOINT tagged LINEAGE      -> JSON: type -> ids tagged with the lineage
    aws_inspect.py ENDPOINT terminate ID
    aws_inspect.py ENDPOINT stop ID
    aws_inspect.py ENDPOINT instance ID         -> JSON: its state and type
    aws_inspect.py ENDPOINT open-port GROUP PORT
    aws_inspect.py ENDPOINT create-vpc CIDR     -> the new VPC's id
    aws_inspect.py ENDPOINT address ALLOCATION  -> JSON: the elastic IP's public IP and instance
    aws_inspect.py ENDPOINT schedule ID         -> JSON: the DLM policy (snapshot schedule)
    aws_inspect.py ENDPOINT loosen-schedule ID  disables the policy and keeps 1 snapshot
"""

import json
import sys

import boto3

endpoint, op, *args = sys.argv[1:]


def client(service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


ec2, dlm = client("ec2"), client("dlm")

if op == "tagged":
    mine = [{"Name": "tag:infra:lineage", "Values": [args[0]]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    found = {
        "vpc": [v["VpcId"] for v in ec2.describe_vpcs(Filters=mine)["Vpcs"]],
        "subnet": [s["SubnetId"] for s in ec2.describe_subnets(Filters=mine)["Subnets"]],
        "internet_gateway": [
            g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=mine)["InternetGateways"]
        ],
        "route_table": [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=mine)["RouteTables"]],
        "security_group": [g["GroupId"] for g in ec2.describe_security_groups(Filters=mine)["SecurityGroups"]],
        "key_pair": [k["KeyPairId"] for k in ec2.describe_key_pairs(Filters=mine)["KeyPairs"]],
        "instance": [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=mine + live)["Reservations"]
            for i in r["Instances"]
        ],
        "volume": [v["VolumeId"] for v in ec2.describe_volumes(Filters=mine)["Volumes"]],
        "snapshot": [s["SnapshotId"] for s in ec2.describe_snapshots(Filters=mine, OwnerIds=["self"])["Snapshots"]],
        "elastic_ip": [a["AllocationId"] for a in ec2.describe_addresses(Filters=mine)["Addresses"]],
        "snapshot_schedule": [
            p["PolicyId"]
            for p in dlm.get_lifecycle_policies()["Policies"]
            if p.get("Tags", {}).get("infra:lineage") == args[0]
        ],
    }
    print(json.dumps({k: v for k, v in found.items() if v}))
elif op == "terminate":
    ec2.terminate_instances(InstanceIds=[args[0]])
elif op == "stop":
    ec2.stop_instances(InstanceIds=[args[0]])
elif op == "instance":
    i = ec2.describe_instances(InstanceIds=[args[0]])["Reservations"][0]["Instances"][0]
    print(json.dumps({"state": i["State"]["Name"], "type": i["InstanceType"]}))
elif op == "open-port":
    port = int(args[1])
    ec2.authorize_security_group_ingress(
        GroupId=args[0],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
elif op == "create-vpc":
    print(ec2.create_vpc(CidrBlock=args[0])["Vpc"]["VpcId"])
elif op == "address":
    a = ec2.describe_addresses(AllocationIds=[args[0]])["Addresses"][0]
    print(json.dumps({"public_ip": a.get("PublicIp"), "instance": a.get("InstanceId")}))
elif op == "schedule":
    print(json.dumps(dlm.get_lifecycle_policy(PolicyId=args[0])["Policy"], default=str))
elif op == "loosen-schedule":
    details = dlm.get_lifecycle_policy(PolicyId=args[0])["Policy"]["PolicyDetails"]
    details["Schedules"][0]["RetainRule"] = {"Count": 1}
    dlm.update_lifecycle_policy(PolicyId=args[0], State="DISABLED", PolicyDetails=details)
else:
    sys.exit(f"unknown operation {op}")
