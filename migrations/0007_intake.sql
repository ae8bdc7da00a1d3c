ALTER TABLE `jobs` ADD `receiving` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `transfers_job_destination` ON `transfers` (`job_id`,`destination`);