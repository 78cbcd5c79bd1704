-- Version 6: queue settings kept in the store (model/queues.py): a queue's fleet-wide
-- concurrency limit, its bound on waiting jobs and what an enqueue past it does, and which of
-- them an operator set (a JSON array of setting names: code syncs leave those alone). NULL
-- concurrency or max_size: no limit, no bound.
ALTER TABLE conveyor_queues ADD COLUMN concurrency INTEGER;
ALTER TABLE conveyor_queues ADD COLUMN max_size INTEGER;
ALTER TABLE conveyor_queues ADD COLUMN when_full TEXT NOT NULL DEFAULT 'wait';
ALTER TABLE conveyor_queues ADD COLUMN operator_set TEXT NOT NULL DEFAULT '[]';
