"""The platform PKI: a CA (offline-capable root, online issuing CA), device certificates carrying
their site, zone and Modbus/TCP Security role, enrolment with one-time tokens, renewal,
revocation with a CRL and an event, and expiry alerts."""
