-- SIP passwords are kept as digest HA1 = md5(email:realm:password), never in clear.
-- Clear-text values stored before cannot be converted here; they are dropped and must be set again.
ALTER TABLE users RENAME COLUMN sip_password TO sip_ha1;
UPDATE users SET sip_ha1 = NULL;
