"""Schemathesis hooks of the fleet's fuzzing run (tests/fuzz): one check of
our own, `refused_requests_change_nothing`.

A request the service refuses (any 4xx) must leave its data as it was. The
data is what the service's own API shows of the world the test set up
(`HEYBLUE_FUZZ_FINGERPRINT`: a list of `[url, token]` to read with GET,
written by the test). Before every unsafe request (not GET, HEAD or
OPTIONS) the check reads them; after a refusal it reads them again.

Other requests and the events they set off can change the same data while
a refused request is in flight (the fleet is asynchronous), so a
difference alone proves nothing. A difference is confirmed on a quiet
fleet: the check waits until two readings a second apart agree, sends the
very same request again (same bytes, same headers), and fails only if that
one is refused too and the data changed across it.
"""

import json
import os
import time

import requests
import schemathesis

FINGERPRINT = json.loads(os.environ.get("HEYBLUE_FUZZ_FINGERPRINT", "[]"))
SAFE = {"GET", "HEAD", "OPTIONS"}
QUIET_FOR = 1.0
QUIET_AT_MOST = 20.0

_session = requests.Session()
# Readings taken before each unsafe request, by the case's identity (cases
# take no attributes of ours).
_before = {}


def fingerprint():
    """What the service's API shows of the world: each reading's status
    and body, without the fields that only say when something was read."""
    seen = []
    for url, token in FINGERPRINT:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = _session.get(url, headers=headers, timeout=10)
            seen.append((url, response.status_code, response.text))
        except requests.RequestException as error:
            seen.append((url, None, type(error).__name__))
    return seen


def difference(before, after):
    for (url, status_before, body_before), (_, status_after, body_after) in zip(before, after):
        if (status_before, body_before) != (status_after, body_after):
            return f"GET {url}: {status_before} {body_before[:600]}\n  became {status_after} {body_after[:600]}"
    return None


def quiet_fingerprint():
    """A reading that stays the same for QUIET_FOR seconds (or the last one
    once QUIET_AT_MOST has passed)."""
    deadline = time.monotonic() + QUIET_AT_MOST
    last = fingerprint()
    while time.monotonic() < deadline:
        time.sleep(QUIET_FOR)
        current = fingerprint()
        if current == last:
            return current
        last = current
    return last


@schemathesis.hook
def before_call(context, case, kwargs):
    if FINGERPRINT and case.method.upper() not in SAFE:
        _before[id(case)] = fingerprint()


@schemathesis.check
def refused_requests_change_nothing(ctx, response, case):
    before = _before.pop(id(case), None)
    if before is None or not 400 <= response.status_code < 500:
        return None
    if difference(before, fingerprint()) is None:
        return True
    # Something changed meanwhile; was it this request? Ask again, quietly.
    sent = response.request
    quiet = quiet_fingerprint()
    replayed = _session.request(
        sent.method, sent.url, headers=dict(sent.headers), data=sent.body, timeout=30
    )
    if not 400 <= replayed.status_code < 500:
        return True
    changed = difference(quiet, fingerprint())
    if changed is not None:
        raise AssertionError(
            f"{sent.method} {sent.url} was refused with {replayed.status_code} "
            f"and still changed data:\n  {changed}"
        )
    return True
