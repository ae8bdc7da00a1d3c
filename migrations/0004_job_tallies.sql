ALTER TABLE `jobs` ADD `queued_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `waiting_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `running_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `succeeded_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `failed_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `cancelled_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `bytes_done` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `bytes_total` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `bytes_unknown` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Hand-written below: the trigger that keeps the tallies (drizzle-kit does not model triggers).
-- There is no insert trigger: a job's transfers are inserted with the job (store.createJob),
-- which writes their tallies itself; a trigger per inserted row made a 100,000-transfer job 4x slower.
CREATE TRIGGER `transfers_tally_update` AFTER UPDATE OF `state`, `bytes_done`, `bytes_total` ON `transfers`
WHEN OLD.`state` IS NOT NEW.`state` OR OLD.`bytes_done` IS NOT NEW.`bytes_done` OR OLD.`bytes_total` IS NOT NEW.`bytes_total`
BEGIN
  UPDATE `jobs` SET
    `queued_count` = `queued_count` + (NEW.`state` = 'queued') - (OLD.`state` = 'queued'),
    `waiting_count` = `waiting_count` + (NEW.`state` = 'waiting') - (OLD.`state` = 'waiting'),
    `running_count` = `running_count` + (NEW.`state` = 'running') - (OLD.`state` = 'running'),
    `succeeded_count` = `succeeded_count` + (NEW.`state` = 'succeeded') - (OLD.`state` = 'succeeded'),
    `failed_count` = `failed_count` + (NEW.`state` = 'failed') - (OLD.`state` = 'failed'),
    `cancelled_count` = `cancelled_count` + (NEW.`state` = 'cancelled') - (OLD.`state` = 'cancelled'),
    `bytes_done` = `bytes_done` + NEW.`bytes_done` - OLD.`bytes_done`,
    `bytes_total` = `bytes_total` + coalesce(NEW.`bytes_total`, 0) - coalesce(OLD.`bytes_total`, 0),
    `bytes_unknown` = `bytes_unknown` + (NEW.`bytes_total` IS NULL) - (OLD.`bytes_total` IS NULL)
  WHERE `id` = NEW.`job_id`;
END;
--> statement-breakpoint
-- Jobs from before this migration: tally what is there.
UPDATE `jobs` SET
  `queued_count` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`state` = 'queued'),
  `waiting_count` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`state` = 'waiting'),
  `running_count` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`state` = 'running'),
  `succeeded_count` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`state` = 'succeeded'),
  `failed_count` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`state` = 'failed'),
  `cancelled_count` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`state` = 'cancelled'),
  `bytes_done` = (SELECT coalesce(sum(t.`bytes_done`), 0) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id`),
  `bytes_total` = (SELECT coalesce(sum(t.`bytes_total`), 0) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id`),
  `bytes_unknown` = (SELECT count(*) FROM `transfers` t WHERE t.`job_id` = `jobs`.`id` AND t.`bytes_total` IS NULL);
