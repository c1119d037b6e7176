"""The web layer's foundation through a real lighttpd: HTTPS serving, the static
stylesheet, the login page with every security header, and plain HTTP refused."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import SOURCE_DIR, Instance  # noqa: E402

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Strict-Transport-Security": "max-age=31536000",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Content-Type": "text/html; charset=utf-8",
}


class HttpsServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance()
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()

    def test_certificate_key_is_private(self):
        key = os.path.join(self.wmk.data_dir, "tls", "key.pem")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

    def test_static_stylesheet_is_served(self):
        r = self.wmk.client().get("/static/style.css")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/css"))
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        with open(os.path.join(SOURCE_DIR, "cgi", "static", "style.css"), "rb") as f:
            self.assertEqual(r.body, f.read())

    def test_login_page_has_every_security_header(self):
        r = self.wmk.client().get("/login")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.page, "login")
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(r.header(name), value, name)
        self.assertIn("/static/style.css", r.text)
        self.assertIn('name="viewport"', r.text)

    def test_login_form_carries_a_csrf_token_matching_its_cookie(self):
        c = self.wmk.client()
        r = c.get("/login")
        token = r.hidden("csrf", form_action="/login")
        self.assertTrue(token and len(token) >= 40)
        cookie = r.set_cookies()["__Host-wmk-login-csrf"]
        self.assertEqual(cookie["value"], token)
        for attr in ("secure", "httponly"):
            self.assertIs(cookie.get(attr), True, attr)
        self.assertEqual(cookie.get("samesite"), "Strict")
        self.assertEqual(cookie.get("path"), "/")
        # A fresh token for every form.
        self.assertNotEqual(self.wmk.client().get("/login").hidden("csrf"), token)

    def test_root_redirects_to_inbox(self):
        r = self.wmk.client().get("/")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.location, "/inbox")

    def test_unknown_path_is_not_found(self):
        self.assertEqual(self.wmk.client().get("/nonexistent").status, 404)
        self.assertEqual(self.wmk.client().get("/loginx").status, 404)

    def test_wrong_method_is_refused_with_allow(self):
        r = self.wmk.client().request("DELETE", "/login")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.page, "error")
        self.assertIn("GET", r.header("Allow"))


class PlainHttpRefused(unittest.TestCase):
    """DESIGN §6: the CGI refuses to run without HTTPS unless allow_insecure_http."""

    def test_plain_http_server_gets_403(self):
        with Instance(tls=False) as wmk:
            wmk.start()
            r = wmk.client().get("/login")
            self.assertEqual(r.status, 403, r.text)
            self.assertEqual(r.page, "error")
            self.assertIn("HTTPS", r.text)
            self.assertEqual(r.header_all("Set-Cookie"), [])
            # A POST is refused the same way, before its body is looked at.
            r = wmk.client().post("/login", {"user": "a", "password": "b"})
            self.assertEqual(r.status, 403)

    def test_plain_http_allowed_when_configured(self):
        with Instance(tls=False, config={"allow_insecure_http": "true"}) as wmk:
            wmk.start()
            r = wmk.client().get("/login")
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(r.page, "login")

    def test_cgi_without_https_variable_gets_403(self):
        with Instance() as wmk:
            r = wmk.run_cgi("login")
            self.assertEqual(r.status, 403)
            self.assertEqual(r.page, "error")
            r = wmk.run_cgi("login", https=True)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.page, "login")

    def test_unreadable_config_gives_503_without_details(self):
        with Instance() as wmk:
            r = wmk.run_cgi("login", https=True,
                            env={"WEBMAILKEY_CONFIG": os.path.join(wmk.tmp, "missing.conf")})
            self.assertEqual(r.status, 503)
            self.assertEqual(r.page, "error")
            self.assertNotIn("missing.conf", r.text)
            self.assertIn("missing.conf", r.stderr)


if __name__ == "__main__":
    unittest.main()
