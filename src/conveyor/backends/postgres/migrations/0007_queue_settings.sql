-- Version 7: queue settings kept in the store (model/queues.py): a queue's fleet-wide
-- concurrency limit, its bound on waiting jobs and what an enqueue past it does, and which of
-- them an operator set (code syncs leave those alone). NULL concurrency or max_size: no limit,
-- no bound. A claim reads the limits, an enqueue the bounds, so an operator's change applies
-- to the next of either on every host.
ALTER TABLE __schema__.queues
    ADD COLUMN concurrency integer,
    ADD COLUMN max_size integer,
    ADD COLUMN when_full text NOT NULL DEFAULT 'wait',
    ADD COLUMN operator_set text[] NOT NULL DEFAULT '{}';
