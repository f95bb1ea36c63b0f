// Floor 1: the runtime alone. Answers every request with a fixed 200 JSON body the size of a short tag list,
// so the difference to the service is everything the service does beyond receiving and answering a request.
const BODY = JSON.stringify({ tags: ["bench-tag-0", "bench-tag-1", "bench-tag-2", "bench-tag-3", "bench-tag-4"] });

export default {
	fetch() {
		return new Response(BODY, { headers: { "Content-Type": "application/json" } });
	},
} satisfies ExportedHandler;
