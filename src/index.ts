import { app } from "./app";
import { handleQueue } from "./jobs/consumer";

export default {
	fetch: app.fetch,
	queue: handleQueue,
} satisfies ExportedHandler<Env>;
