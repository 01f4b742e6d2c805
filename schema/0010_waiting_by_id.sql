-- remit schema, version 10: the list of requests waiting for a decision, newest first
-- (`GET /payment-requests?status=pending_approval`, the admin's and the kiosk's screens), walks
-- the waiting requests only. Without it the list walked every request from the newest to find
-- a hundred still waiting: a third of a second at a million escrows. The index holds only the
-- waiting requests (bounded by their expiry, not by the ledger's size); deciding a request
-- takes it out, one more index entry per approval.
CREATE INDEX payment_requests_waiting_by_id ON payment_requests(id)
    WHERE status = 'pending_approval';
