"""The Webex side: the API client, payload schemas, and the simulator of the API."""
