-- GET /learners?tags= finds learners by tag: each tag's learners come out of one range of this index, in learner
-- id order (the directory's order), so a page reads about as many entries as it holds learners, however many
-- learners the tag or the application has. Ends, implicitly, in rowid.
CREATE INDEX learner_tags_by_tag ON learner_tags (app_id, tag, learner_id);
