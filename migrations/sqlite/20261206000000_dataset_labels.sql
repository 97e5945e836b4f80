-- The label range of an uploaded dataset, found by the streaming scan at upload (issue 7), so a
-- job is checked against the model's class count at submission. NULL in rows stored before:
-- those are checked by the worker when it loads the set.
ALTER TABLE datasets ADD COLUMN label_min INTEGER;
ALTER TABLE datasets ADD COLUMN label_max INTEGER;
