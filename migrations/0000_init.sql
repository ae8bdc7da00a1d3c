CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`state` text NOT NULL,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`token` text,
	`options` text DEFAULT '{}' NOT NULL,
	`transfer_count` integer NOT NULL,
	`error_code` text,
	`error_message` text,
	`error_hint` text,
	`waiting_reason` text,
	`waiting_hint` text
);
--> statement-breakpoint
CREATE INDEX `jobs_state_created` ON `jobs` (`state`,`created_at`);--> statement-breakpoint
CREATE INDEX `jobs_created` ON `jobs` (`created_at`);--> statement-breakpoint
CREATE TABLE `transfers` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`job_id` text NOT NULL,
	`idx` integer NOT NULL,
	`source` text NOT NULL,
	`destination` text NOT NULL,
	`host` text NOT NULL,
	`state` text NOT NULL,
	`bytes_done` integer DEFAULT 0 NOT NULL,
	`bytes_total` integer,
	`attempts` integer DEFAULT 0 NOT NULL,
	`not_before` integer DEFAULT 0 NOT NULL,
	`checksum_value` text,
	`error_code` text,
	`error_message` text,
	`error_hint` text,
	`waiting_reason` text,
	`waiting_hint` text,
	`run_id` text,
	`started_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`job_id`) REFERENCES `jobs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `transfers_job_idx` ON `transfers` (`job_id`,`idx`);--> statement-breakpoint
CREATE INDEX `transfers_job_state` ON `transfers` (`job_id`,`state`);--> statement-breakpoint
CREATE INDEX `transfers_queue` ON `transfers` (`state`,`id`);