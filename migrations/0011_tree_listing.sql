ALTER TABLE `jobs` ADD `list_roots` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `listed_at` integer;