import { app } from "./app";
import { handleQueue } from "./jobs/consumer";
import { sweep } from "./jobs/sweeper";

export default {
	fetch: app.fetch,
	queue: handleQueue,
	// The Cron Trigger (wrangler.toml [triggers]): send again the messages of jobs nobody attends to.
	scheduled: async (controller, env) => {
		await sweep(env, controller.scheduledTime);
	},
} satisfies ExportedHandler<Env>;
