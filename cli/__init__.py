"""The mydocker command: an HTTP client of the service (never imports runtime/)."""
