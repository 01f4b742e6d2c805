-- remit schema, version 20: a text being sent is marked so. The write just before the gateway is
-- called counts its attempt and sets `in_flight`; the write of its result clears it. A text still
-- marked when it is next claimed had its call cut before its result was written (the server
-- killed, the machine off): whether the gateway took it is not known, as after a call with no
-- answer in time, so it is tried once more and a second such outcome fails it. Before, such a
-- text was sent again with its attempt not counted, once more after each crash.
-- Replication leaves this table out.

ALTER TABLE sms_messages ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0
    CHECK ((in_flight = 0 OR in_flight = 1));
