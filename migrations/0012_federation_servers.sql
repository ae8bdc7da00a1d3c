ALTER TABLE `transfers` ADD `served_by` text;--> statement-breakpoint
ALTER TABLE `transfers` ADD `server_attempts` text;