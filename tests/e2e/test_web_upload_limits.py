"""Too-large uploads get the product's own pages, never the web server's bare 413.

With attachment_max_bytes = 100000: a file a little over the limit is refused on the
compose page, which keeps the typed recipients, subject and text; a body over the
programs' limit (4 × attachment_max_bytes + 2 MiB) gets webmailkey's 413 page; the
server (scripts/serve → lighttpd) lets both through to the programs."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wmk_e2e import Instance  # noqa: E402

PASSWORD = "correct horse battery staple"
LIMIT = 100000


def login(client):
    return client.login("alice", PASSWORD)


class UploadLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wmk = Instance(config={"attachment_max_bytes": LIMIT})
        cls.wmk.add_user("alice", PASSWORD, "alice@example.org")
        cls.wmk.start()

    @classmethod
    def tearDownClass(cls):
        cls.wmk.close()

    def post(self, c, data):
        token = c.get("/compose").hidden("csrf", form_action="/compose")
        return c.post("/compose", [("csrf", token), ("to", "bob@example.org"),
                                   ("subject", "Quarterly figures"),
                                   ("body", "Typed with care.\nSecond line.\n"),
                                   ("action", "save")],
                      files=[("attachment", "big.bin", "application/octet-stream", data)])

    def test_file_over_the_limit_keeps_the_typed_text(self):
        c = self.wmk.client()
        login(c)
        r = self.post(c, b"x" * (LIMIT * 2))
        self.assertEqual((r.status, r.page), (400, "compose"), r.text[:500])
        self.assertIn("larger than the limit", r.text_of("notice-error"))
        self.assertIn("Quarterly figures", r.text)
        self.assertIn("Typed with care.", r.text)
        self.assertIn("bob@example.org", r.text)

    def test_body_over_the_programs_limit_gets_the_products_page(self):
        c = self.wmk.client()
        login(c)
        r = self.post(c, b"x" * (LIMIT * 4 + 3 * 1024 * 1024))
        self.assertEqual((r.status, r.page), (413, "error"), r.text[:500])
        self.assertIn("too much to send at once", r.text)
        self.assertNotIn("lighttpd", r.text.lower())


if __name__ == "__main__":
    unittest.main()
