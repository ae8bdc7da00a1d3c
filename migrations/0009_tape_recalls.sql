CREATE TABLE `stage_requests` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`endpoint` text NOT NULL,
	`origin` text NOT NULL,
	`credential` text NOT NULL,
	`request_id` text,
	`created_at` integer NOT NULL,
	`next_poll_at` integer NOT NULL,
	`poll_delay_ms` integer NOT NULL,
	`polls` integer DEFAULT 0 NOT NULL,
	`last_polled_at` integer,
	`last_error` text,
	`resubmitted` integer DEFAULT false NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE INDEX `stage_requests_open` ON `stage_requests` (`next_poll_at`) WHERE "stage_requests"."finished_at" IS NULL;--> statement-breakpoint
ALTER TABLE `jobs` ADD `needs_stage` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `transfers` ADD `stage_request` integer;--> statement-breakpoint
ALTER TABLE `transfers` ADD `staged_at` integer;--> statement-breakpoint
CREATE INDEX `transfers_stage_request` ON `transfers` (`stage_request`) WHERE "transfers"."stage_request" IS NOT NULL;