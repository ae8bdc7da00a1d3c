ALTER TABLE `jobs` ADD `skipped_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Hand-written below (drizzle-kit does not model triggers): the tally trigger of 0004, with `skipped`.
DROP TRIGGER IF EXISTS `transfers_tally_update`;--> statement-breakpoint
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
    `skipped_count` = `skipped_count` + (NEW.`state` = 'skipped') - (OLD.`state` = 'skipped'),
    `bytes_done` = `bytes_done` + NEW.`bytes_done` - OLD.`bytes_done`,
    `bytes_total` = `bytes_total` + coalesce(NEW.`bytes_total`, 0) - coalesce(OLD.`bytes_total`, 0),
    `bytes_unknown` = `bytes_unknown` + (NEW.`bytes_total` IS NULL) - (OLD.`bytes_total` IS NULL)
  WHERE `id` = NEW.`job_id`;
END;
