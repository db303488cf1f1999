-- The connection a device registered over, when that was TLS: "ip:port",
-- its source as this instance saw it. A phone on TLS names in its Contact
-- a port it may take no connection on (behind NAT, or a softphone that
-- only dials out), so calls to it ride the connection it keeps open to us
-- (RFC 5626's flow), and only through the instance that holds it.
ALTER TABLE registrations ADD COLUMN flow TEXT;
