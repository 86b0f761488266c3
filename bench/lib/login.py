#!/usr/bin/env python3
"""Obtain a real session cookie for a benchmark target, using the standard library only.

  login.py rocketgate http://127.0.0.1:4180      follows the demo's OAuth login through the
                                                  Rocketpunch stand-in (user 1001, approve)
  login.py oauth2-proxy http://127.0.0.1:4181 USER PASSWORD
                                                  signs in with oauth2-proxy's htpasswd form

Prints the Cookie header value ("name=value; ...") that carries the session, and nothing
else; exits non-zero with a message on stderr when any step does not go as expected.
"""

import html.parser
import http.client
import sys
import urllib.parse


def die(msg):
    print(f"login.py: {msg}", file=sys.stderr)
    sys.exit(1)


class Jar:
    """Cookies by name; good enough for one host on loopback (no paths, no expiry)."""

    def __init__(self):
        self.cookies = {}

    def take(self, response):
        for header, value in response.getheaders():
            if header.lower() != "set-cookie":
                continue
            pair = value.split(";", 1)[0]
            name, _, val = pair.partition("=")
            attrs = value.lower()
            if "max-age=0" in attrs or "expires=thu, 01 jan 1970" in attrs or val == "":
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = val.strip()

    def header(self, prefix=None):
        return "; ".join(
            f"{k}={v}" for k, v in self.cookies.items() if prefix is None or k.startswith(prefix)
        )


def request(method, url, jar, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    h = {"Accept": "text/html", "User-Agent": "rocketgate-bench-login"}
    if jar.cookies:
        h["Cookie"] = jar.header()
    if headers:
        h.update(headers)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    jar.take(resp)
    conn.close()
    return resp, data


class Form(html.parser.HTMLParser):
    """The stand-in's consent form: its action and hidden fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def rocketgate(proxy):
    proxy_jar, provider_jar = Jar(), Jar()
    resp, _ = request("GET", proxy + "/", proxy_jar)
    if resp.status != 302:
        die(f"GET {proxy}/ without a session: expected 302 to the provider, got {resp.status}")
    authorize = resp.getheader("Location")
    resp, page = request("GET", authorize, provider_jar)
    if resp.status != 200:
        die(f"GET consent page: expected 200, got {resp.status}")
    form = Form()
    form.feed(page.decode("utf-8", "replace"))
    if not form.action or "state" not in form.fields:
        die("the consent page has no form with hidden fields")
    fields = dict(form.fields, user="1001", decision="approve")
    action = urllib.parse.urljoin(authorize, form.action)
    resp, _ = request(
        "POST",
        action,
        provider_jar,
        body=urllib.parse.urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if resp.status not in (302, 303):
        die(f"POST consent: expected a redirect to the callback, got {resp.status}")
    callback = resp.getheader("Location")
    if "/oauth2/callback" not in callback:
        die(f"POST consent redirected to {callback}, not /oauth2/callback")
    resp, _ = request("GET", callback, proxy_jar)
    if resp.status not in (302, 303):
        die(f"GET callback: expected a redirect back to the app, got {resp.status}")
    cookie = proxy_jar.header("_rocketgate")
    if not cookie:
        die("the callback set no _rocketgate cookie")
    # Only the session cookie (and its chunks), not the spent CSRF cookie.
    return "; ".join(
        p for p in cookie.split("; ") if p.split("=", 1)[0].rstrip("0123456789").rstrip("_") == "_rocketgate"
    )


def oauth2_proxy(proxy, user, password):
    jar = Jar()
    resp, _ = request(
        "POST",
        proxy + "/oauth2/sign_in",
        jar,
        body=urllib.parse.urlencode({"username": user, "password": password, "rd": "/"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if resp.status not in (302, 303):
        die(f"POST /oauth2/sign_in: expected a redirect, got {resp.status}")
    cookie = jar.header("_oauth2_proxy")
    if not cookie:
        die("POST /oauth2/sign_in set no _oauth2_proxy cookie")
    return cookie


def main(argv):
    if len(argv) >= 3 and argv[1] == "rocketgate":
        print(rocketgate(argv[2].rstrip("/")))
    elif len(argv) >= 5 and argv[1] == "oauth2-proxy":
        print(oauth2_proxy(argv[2].rstrip("/"), argv[3], argv[4]))
    else:
        die(__doc__)


if __name__ == "__main__":
    main(sys.argv)
