-- An e-mail address belongs to one account at most, whatever its case: the
-- index decides even between two accounts claiming it at the same moment.
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
