"""WebDAV dead properties are well-formed XML, in and out (issue 13 item 12): a
PROPPATCH value that is not well-formed on its own (an undeclared entity, a DTD)
is refused, and PROPFIND answers stay well-formed whatever is stored."""
import base64
import http.client
import xml.dom.minidom

import harness
from harness import HubTest, q

HEAD = b'<?xml version="1.0"?>'
SET = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>%s</D:prop>'
       b'</D:set></D:propertyupdate>')


class DeadPropsTest(HubTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, _, payload, _ = cls.hub.request(
            "PUT", "/api/v1/workspaces/%d/upload?path=%s" % (cls.ws, q("/p.txt")), raw=b"p",
            token=cls.token)
        assert st == 201, payload

    def dav(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.hub.content_port, timeout=60)
        h = {"Authorization": "Basic " + base64.b64encode(
            (harness.EMAIL + ":" + harness.PASSWORD).encode()).decode()}
        h.update(headers or {})
        conn.request(method, "/dav/%d%s" % (self.ws, path), body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def propfind_is_well_formed(self):
        st, data = self.dav("PROPFIND", "/", headers={"Depth": "1"})
        self.assertEqual(st, 207)
        xml.dom.minidom.parseString(data)  # raises if not well-formed
        return data

    def test_a_value_with_an_undeclared_entity_is_refused(self):
        bodies = [
            HEAD + SET % b"<Z:a>&undeclared;</Z:a>",
            HEAD + b'<!DOCTYPE D:propertyupdate [<!ENTITY % pe SYSTEM "nowhere">%pe;]>' +
            SET % b"<Z:a>&undeclared;</Z:a>",
            HEAD + b'<!DOCTYPE D:propertyupdate [<!ENTITY e "declared">]>' +
            SET % b"<Z:a>&e;</Z:a>",
        ]
        for body in bodies:
            with self.subTest(body=body):
                st, data = self.dav("PROPPATCH", "/p.txt", body)
                self.assertIn(st, (400, 422), data)
                self.assertNotIn(b"undeclared", self.propfind_is_well_formed())

    def test_a_well_formed_value_round_trips(self):
        st, data = self.dav("PROPPATCH", "/p.txt",
                            HEAD + SET % b'<Z:b xmlns:Y="urn:y"><Y:c k="1">x &amp; y</Y:c></Z:b>')
        self.assertEqual(st, 207, data)
        out = self.propfind_is_well_formed()
        self.assertIn(b"x &amp; y", out)

    def test_a_stored_value_that_is_not_well_formed_is_not_replayed(self):
        fid = self.hub.sql("SELECT id FROM files WHERE name = 'p.txt'")[0][0]
        self.hub.sql("INSERT INTO dav_props(workspace_id, entity, entity_id, ns, name, "
                     "value_xml) VALUES(?, 'file', ?, 'urn:z', 'bad', ?)",
                     (self.ws, fid, '<bad xmlns="urn:z">&undeclared;</bad>'))
        out = self.propfind_is_well_formed()
        self.assertNotIn(b"undeclared", out)


if __name__ == "__main__":
    harness.main()
