-- GET /registrations lists in (created_at, pk) order by default (orderBy created_desc) and bounds since/until on
-- created_at: with these, a learner's or a course's page comes out of one index range already in order, so a
-- page reads about as many rows as it returns, however many registrations match. Like every index on this
-- table, they end implicitly in pk. The course index replaces (app_id, course_id), now its prefix;
-- (app_id, learner_id) stays: the job runners walk a learner's registrations in pk order.
CREATE INDEX registrations_by_app_learner_created ON registrations (app_id, learner_id, created_at);
CREATE INDEX registrations_by_app_course_created ON registrations (app_id, course_id, created_at);
DROP INDEX registrations_by_app_course;
