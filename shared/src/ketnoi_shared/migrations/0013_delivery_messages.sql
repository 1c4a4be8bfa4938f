-- Console: what officers read about a failed delivery (plain Vietnamese, from the notifier)
-- and the Zalo message ids of a sent one.
-- depends: 0011_console_clocks

ALTER TABLE delivery_results ADD COLUMN IF NOT EXISTS error_message text;
ALTER TABLE delivery_results ADD COLUMN IF NOT EXISTS zalo_message_ids text[] NOT NULL DEFAULT '{}';
