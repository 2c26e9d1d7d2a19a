"""A shop and its login provider on two loopback ports: python3 flows.py MODE PORT [IDP_PORT].

Modes:
  idp PORT              the login provider: /authorize (a form, or "welcome back" when its
                        own localStorage remembers the user), /token (a code for a token),
                        /userinfo (a token for the user's name), /profile (its own session)
  shop PORT IDP_PORT    the app: / (links and buttons), /login (a redirect to the
                        provider), /callback (the code exchange), /account, a popup login,
                        a print view that closes itself (/print?after=MS), a CSV export

Every address is made from the page's own host, so the pair works on 127.0.0.1 and on
localhost alike, and so does a browser's separation of the two. Codes and tokens are
signed, not stored: a provider started again (a new run) still accepts the old ones.
SHOP_BUG (the shop's environment) seeds a bug: ``silent-popup`` (the popup closes without
telling its opener), ``export`` (the CSV export loses its Total column).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit

_KEY = b"flows-fixture-key"


def _sign(kind: str, user: str) -> str:
    body = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
    mac = hmac.new(_KEY, f"{kind}.{body}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"{kind}.{body}.{mac}"


def _open(kind: str, value: str) -> str | None:
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != kind:
        return None
    body = parts[1]
    mac = hmac.new(_KEY, f"{kind}.{body}".encode(), hashlib.sha256).hexdigest()[:16]
    if not hmac.compare_digest(mac, parts[2]):
        return None
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:'DejaVu Sans',sans-serif;font-size:20px;margin:24px">
{body}
</body></html>"""

_IDP_AUTHORIZE = """<h1>Login provider</h1>
<p id="remembered"></p>
<input id="user" aria-label="User" style="font-size:20px">
<button id="approve" style="font-size:20px">Approve</button>
<script>
  const q = new URLSearchParams(location.search);
  const known = localStorage.getItem('idp_user');
  if (known && document.cookie.includes('idp_session=')) {
    document.getElementById('remembered').textContent = 'Welcome back ' + known;
    document.getElementById('user').value = known;
  }
  document.getElementById('approve').addEventListener('click', async () => {
    const user = document.getElementById('user').value;
    localStorage.setItem('idp_user', user);
    document.cookie = 'idp_session=1; path=/; max-age=3600';
    const code = await (await fetch('/code?user=' + encodeURIComponent(user))).text();
    if (q.get('popup')) {
      if (!q.get('silent')) window.opener.postMessage({code}, '*');
      window.close();
    } else {
      location = q.get('redirect_uri') + '?code=' + encodeURIComponent(code);
    }
  });
</script>"""

_IDP_PROFILE = """<h1>Provider profile</h1>
<p id="who"></p>
<script>
  const known = localStorage.getItem('idp_user');
  document.getElementById('who').textContent =
    known && document.cookie.includes('idp_session=') ? 'Provider session: ' + known
    : 'No provider session';
</script>"""

_SHOP_SCRIPT = """<script>
  const IDP = location.protocol + '//' + location.hostname + ':{idp_port}';
  async function signedIn(token) {{
    if (!token || !document.cookie.includes('shop_session=')) return null;
    const r = await fetch(IDP + '/userinfo?token=' + encodeURIComponent(token));
    return r.ok ? (await r.json()).name : null;
  }}
  async function exchange(code) {{
    const r = await fetch(IDP + '/token?code=' + encodeURIComponent(code));
    const token = (await r.json()).token;
    localStorage.setItem('shop_token', token);
    document.cookie = 'shop_session=1; path=/; max-age=3600';
    return token;
  }}
</script>"""

_SHOP_HOME = """<h1>Shop</h1>
<p><a id="signin" href="/login">Sign in</a> · <a id="account" href="/account">Account</a>
 · <a id="provider" href="#">Provider profile</a></p>
<p><button id="popup-signin">Sign in with a popup</button>
<button id="export">Export orders</button>
<a id="print" href="/print?after=1500" target="_blank">Print invoice</a>
<button id="print-window">Print in a window</button>
<button id="modal">Details</button></p>
<p id="status">Not signed in</p>
<p id="modal-state"></p>
{script}
<script>
  document.getElementById('provider').href = IDP + '/profile';
  signedIn(localStorage.getItem('shop_token')).then((name) => {{
    if (name) document.getElementById('status').textContent = 'Signed in as ' + name;
  }});
  document.getElementById('popup-signin').addEventListener('click', () => {{
    const silent = {silent} ? '&silent=1' : '';
    window.open(IDP + '/authorize?popup=1' + silent, 'login', 'popup,width=520,height=420');
  }});
  window.addEventListener('message', async (event) => {{
    if (event.origin !== IDP || !event.data.code) return;
    const name = await signedIn(await exchange(event.data.code));
    document.getElementById('status').textContent = 'Signed in as ' + name;
  }});
  // A modal with a history entry of the same URL: the back button closes it.
  document.getElementById('modal').addEventListener('click', () => {{
    history.pushState({{modal: true}}, '', location.href);
    document.getElementById('modal-state').textContent = 'modal open';
  }});
  window.addEventListener('popstate', () => {{
    document.getElementById('modal-state').textContent = 'modal closed';
  }});
  document.getElementById('print-window').addEventListener('click', () => {{
    window.open('/print?after=1500', 'print', 'popup,width=600,height=500');
  }});
  document.getElementById('export').addEventListener('click', () => {{
    const head = {export_bug} ? 'id,item,qty' : 'id,item,qty,Total';
    const row = {export_bug} ? '1,Tea,2' : '1,Tea,2,7.00';
    const blob = new Blob([head + '\\n' + row + '\\n'], {{type: 'text/csv'}});
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'orders-2026-12.csv';
    document.body.append(a);
    a.click();
  }});
</script>"""

_SHOP_LOGIN = """<p>Taking you to the login provider…</p>
{script}
<script>
  const back = location.origin + '/callback';
  location = IDP + '/authorize?redirect_uri=' + encodeURIComponent(back);
</script>"""

_SHOP_CALLBACK = """<p id="status">Signing in…</p>
{script}
<script>
  const code = new URLSearchParams(location.search).get('code');
  exchange(code).then(() => {{ location = '/account'; }});
</script>"""

_SHOP_ACCOUNT = """<h1>Account</h1>
<p id="status">Checking…</p>
{script}
<script>
  signedIn(localStorage.getItem('shop_token')).then((name) => {{
    document.getElementById('status').textContent =
      name ? 'Signed in as ' + name : 'Not signed in';
  }});
</script>"""

_SHOP_PRINT = """<h1>Invoice 42</h1>
<p>Tea × 2: 7.00</p>
<script>
  const after = Number(new URLSearchParams(location.search).get('after') || 1500);
  setTimeout(() => window.close(), after);
</script>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = ""
    idp_port = 0

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("%s\n" % (format % args))

    def _send(self, status: int, body: str, kind: str = "text/html; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _page(self, title: str, body: str) -> None:
        self._send(200, _PAGE.format(title=title, body=body))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.mode == "idp":
            self._idp(url.path, query)
        else:
            self._shop(url.path)

    def _idp(self, path: str, query: dict[str, str]) -> None:
        if path == "/authorize":
            self._page("Login provider", _IDP_AUTHORIZE)
        elif path == "/profile":
            self._page("Provider profile", _IDP_PROFILE)
        elif path == "/code":
            self._send(200, _sign("code", query.get("user", "")), "text/plain")
        elif path == "/token":
            user = _open("code", query.get("code", ""))
            if user is None:
                self._send(400, '{"error": "bad code"}', "application/json")
            else:
                self._send(200, json.dumps({"token": _sign("token", user)}), "application/json")
        elif path == "/userinfo":
            user = _open("token", query.get("token", ""))
            if user is None:
                self._send(401, '{"error": "bad token"}', "application/json")
            else:
                self._send(200, json.dumps({"name": user}), "application/json")
        else:
            self._send(404, "not found", "text/plain")

    def _shop(self, path: str) -> None:
        bug = os.environ.get("SHOP_BUG", "")
        script = _SHOP_SCRIPT.format(idp_port=self.idp_port)
        if path == "/":
            silent = "true" if bug == "silent-popup" else "false"
            export_bug = "true" if bug == "export" else "false"
            body = _SHOP_HOME.format(script=script, silent=silent, export_bug=export_bug)
            self._page("Shop", body)
        elif path == "/login":
            self._page("Shop: signing in", _SHOP_LOGIN.format(script=script))
        elif path == "/callback":
            self._page("Shop: signing in", _SHOP_CALLBACK.format(script=script))
        elif path == "/account":
            self._page("Shop: account", _SHOP_ACCOUNT.format(script=script))
        elif path == "/print":
            self._page("Invoice 42", _SHOP_PRINT)
        else:
            self._send(404, "not found", "text/plain")


def main(argv: list[str]) -> None:
    mode, port = argv[0], int(argv[1])
    attrs: dict[str, object] = {"mode": mode}
    if mode == "shop":
        attrs["idp_port"] = int(argv[2])
    handler = type("Handler", (_Handler,), attrs)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"{mode} listening on {port}", flush=True)
        httpd.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
