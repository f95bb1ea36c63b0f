import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parseShards, shardDatabase } from "../src/shards";

// Setup files run before each test file; applyD1Migrations skips migrations already applied. The control
// database and every shard wrangler.toml lists (three: two default, one eu) get their kind's migrations.
await applyD1Migrations(env.DB, env.TEST_CONTROL_MIGRATIONS);
for (const shard of parseShards(env.SHARDS)) await applyD1Migrations(shardDatabase(env, shard.name), env.TEST_SHARD_MIGRATIONS);
