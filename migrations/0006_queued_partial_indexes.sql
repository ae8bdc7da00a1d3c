DROP INDEX `transfers_host_queue`;--> statement-breakpoint
DROP INDEX `transfers_due`;--> statement-breakpoint
CREATE INDEX `transfers_queued_by_host` ON `transfers` (`host`,`id`) WHERE "transfers"."state" = 'queued';--> statement-breakpoint
CREATE INDEX `transfers_queued_due` ON `transfers` (`not_before`) WHERE "transfers"."state" = 'queued';