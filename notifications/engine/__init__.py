"""The delivery engine: claim due events, send them, record the outcomes. Nothing else delivers.

Protocol (DESIGN §2 "Delivery guarantee"):
1. claim (notifications.engine.claims): in a short transaction, pick due rows with FOR UPDATE SKIP LOCKED and stamp
   them with a lease (`claimed_until`, `claim_token`);
2. send (notifications.engine.sender): outside any transaction, on one asyncio event loop in its own thread;
3. record (notifications.engine.recording): in chunks, one statement applies the outcomes to the events that still
   carry our `claim_token`, one insert writes the attempts; a result whose lease was lost is kept as an attempt but
   not applied.
A worker that dies between 1 and 3 leaves leases that expire, and the events are claimed again. A pass
(notifications.engine.passes) runs the three steps until nothing is left; the breaker holds a failing channel's
events, dispatch hands work to the cluster, upkeep folds the totals and purges what retention lets go.
"""
