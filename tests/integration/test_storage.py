"""Storage modes (docs/storage.md): a workspace keeps its bytes on the hub or
on its hosts; its settings are read and changed through the API."""
import unittest

from harness import HubTest, main


class StorageSettingsTest(HubTest):
    def ws_url(self):
        return "/api/v1/workspaces/%d" % self.ws

    def test_settings_read_back_and_bad_values_change_nothing(self):
        st, body, payload, _ = self.hub.request("GET", self.ws_url(), token=self.token)
        self.assertEqual(st, 200, payload)
        self.assertEqual(body["storage"], "hub")
        self.assertEqual(body["hub_cache_bytes"], 1 << 30)
        self.assertEqual(body["min_replicas"], 2)
        for bad in ({"storage": "cloud"}, {"storage": 1}, {"hub_cache_bytes": -1},
                    {"hub_cache_bytes": "1G"}):
            self.assertError(self.hub.request("PATCH", self.ws_url(), bad, token=self.token),
                             400, "invalid_request")
        st, body, _, _ = self.hub.request("GET", self.ws_url(), token=self.token)
        self.assertEqual((body["storage"], body["hub_cache_bytes"]), ("hub", 1 << 30))
        st, _, payload, _ = self.hub.request("PATCH", self.ws_url(),
                                             {"storage": "hosts", "hub_cache_bytes": 0},
                                             token=self.token)
        self.assertEqual(st, 200, payload)
        st, body, _, _ = self.hub.request("GET", self.ws_url(), token=self.token)
        self.assertEqual((body["storage"], body["hub_cache_bytes"]), ("hosts", 0))
        self.hub.request("PATCH", self.ws_url(), {"storage": "hub"}, token=self.token)


if __name__ == "__main__":
    main()
