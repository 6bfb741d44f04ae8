"""A small stand-in for Amazon Data Lifecycle Manager (DLM), which moto lacks.

scripts/moto-server answers DLM's REST-JSON calls with it (told apart from EC2
calls by the service named in the request's signature), so the tests can apply
and destroy an EBS snapshot schedule. It keeps policies in memory and checks
what the real service checks of a simple snapshot policy: a role, a
description, a state, target tags, one schedule with an hourly interval and a
retain count. It takes no snapshots.
"""

import datetime
import json
import re
import threading
import urllib.parse
import uuid

ACCOUNT = "123456789012"
INTERVALS = {1, 2, 3, 4, 6, 8, 12, 24}


class DlmError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_dlm(environ):
    """Whether a request is signed for the DLM service."""
    return "/dlm/aws4_request" in environ.get("HTTP_AUTHORIZATION", "")


class Dlm:
    def __init__(self):
        self.policies = {}
        self.lock = threading.Lock()

    def __call__(self, environ, start_response, body):
        method = environ["REQUEST_METHOD"]
        path = urllib.parse.unquote(environ.get("PATH_INFO", "/")).rstrip("/")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            with self.lock:
                status, answer = self.route(method, path, query, json.loads(body or b"{}"))
        except DlmError as e:
            start_response(
                f"{e.status} Error", [("Content-Type", "application/json"), ("x-amzn-ErrorType", e.code)]
            )
            return [json.dumps({"Code": e.code, "Message": e.message}).encode()]
        start_response(f"{status} OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    def route(self, method, path, query, body):
        if path == "/policies" and method == "POST":
            return 200, self.create(body)
        if path == "/policies" and method == "GET":
            return 200, self.list(query)
        found = re.fullmatch(r"/policies/([^/]+)", path)
        if found and method == "GET":
            return 200, {"Policy": self.get(found.group(1))}
        if found and method == "PATCH":
            return 200, self.update(found.group(1), body)
        if found and method == "DELETE":
            self.get(found.group(1))
            del self.policies[found.group(1)]
            return 200, {}
        tagged = re.fullmatch(r"/tags/(.+)", path)
        if tagged:
            return 200, self.tags(method, tagged.group(1), query, body)
        raise DlmError(400, "InvalidRequestException", f"the DLM stand-in has no {method} {path}")

    def create(self, body):
        check(body, creating=True)
        policy_id = "policy-" + uuid.uuid4().hex[:17]
        now = timestamp()
        self.policies[policy_id] = {
            "PolicyId": policy_id,
            "PolicyArn": f"arn:aws:dlm:eu-west-1:{ACCOUNT}:policy/{policy_id}",
            "Description": body["Description"],
            "State": body["State"],
            "StatusMessage": "ENABLED",
            "ExecutionRoleArn": body["ExecutionRoleArn"],
            "DateCreated": now,
            "DateModified": now,
            "PolicyDetails": body["PolicyDetails"],
            "Tags": body.get("Tags") or {},
            "DefaultPolicy": False,
        }
        return {"PolicyId": policy_id}

    def list(self, query):
        ids = set(query.get("policyIds", []))
        wanted_state = query.get("state", [None])[0]
        summaries = []
        for policy in self.policies.values():
            if ids and policy["PolicyId"] not in ids:
                continue
            if wanted_state and policy["State"] != wanted_state:
                continue
            summaries.append(
                {key: policy[key] for key in ("PolicyId", "Description", "State", "Tags", "DefaultPolicy")}
                | {"PolicyType": policy["PolicyDetails"].get("PolicyType", "EBS_SNAPSHOT_MANAGEMENT")}
            )
        return {"Policies": summaries}

    def get(self, policy_id):
        policy = self.policies.get(policy_id)
        if policy is None:
            raise DlmError(404, "ResourceNotFoundException", f"policy {policy_id} not found")
        return policy

    def update(self, policy_id, body):
        policy = self.get(policy_id)
        check(body, creating=False)
        for key in ("Description", "State", "ExecutionRoleArn", "PolicyDetails"):
            if key in body:
                policy[key] = body[key]
        policy["DateModified"] = timestamp()
        return {}

    def tags(self, method, arn, query, body):
        policy = next((p for p in self.policies.values() if p["PolicyArn"] == arn), None)
        if policy is None:
            raise DlmError(404, "ResourceNotFoundException", f"no policy has the ARN {arn}")
        if method == "POST":
            policy["Tags"].update(body.get("Tags") or {})
        elif method == "DELETE":
            for key in query.get("tagKeys", []):
                policy["Tags"].pop(key, None)
        return {"Tags": policy["Tags"]} if method == "GET" else {}


def timestamp():
    """Now as DLM writes it: ISO 8601 with an offset."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def check(body, creating):
    """What DLM refuses in a snapshot policy."""
    needed = ("ExecutionRoleArn", "Description", "State", "PolicyDetails") if creating else ()
    for key in needed:
        if not body.get(key):
            raise DlmError(400, "InvalidRequestException", f"{key} is required")
    if "State" in body and body["State"] not in ("ENABLED", "DISABLED"):
        raise DlmError(400, "InvalidRequestException", f"State {body['State']!r} is not ENABLED or DISABLED")
    if "ExecutionRoleArn" in body and not body["ExecutionRoleArn"].startswith("arn:aws:iam::"):
        raise DlmError(400, "InvalidRequestException", "ExecutionRoleArn is not an IAM role ARN")
    details = body.get("PolicyDetails")
    if details is None:
        return
    if details.get("ResourceTypes") != ["VOLUME"] or not details.get("TargetTags"):
        raise DlmError(400, "InvalidRequestException", "a volume policy needs ResourceTypes [VOLUME] and TargetTags")
    schedules = details.get("Schedules") or []
    if len(schedules) != 1:
        raise DlmError(400, "InvalidRequestException", "the stand-in expects exactly one schedule")
    create, retain = schedules[0].get("CreateRule") or {}, schedules[0].get("RetainRule") or {}
    if create.get("Interval") not in INTERVALS or create.get("IntervalUnit") != "HOURS":
        raise DlmError(400, "InvalidRequestException", f"interval {create.get('Interval')} hours is not allowed")
    if not all(re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) for t in create.get("Times") or ["x"]):
        raise DlmError(400, "InvalidRequestException", f"times {create.get('Times')} are not hh:mm")
    if not 1 <= (retain.get("Count") or 0) <= 1000:
        raise DlmError(400, "InvalidRequestException", "RetainRule.Count must be 1 to 1000")
