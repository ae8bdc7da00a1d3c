DROP INDEX `transfers_queue`;--> statement-breakpoint
CREATE INDEX `transfers_host_queue` ON `transfers` (`state`,`host`,`id`);