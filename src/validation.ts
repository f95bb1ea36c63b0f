import type { ZodError } from "zod";

const MAX_ISSUES = 5;

function describePath(path: readonly PropertyKey[]): string {
	let text = "";
	for (const key of path) {
		text += typeof key === "number" ? `[${key}]` : text ? `.${String(key)}` : String(key);
	}
	return text;
}

/** One readable line naming each invalid field: `tags[3]: tag must not contain a comma`. */
export function validationMessage(error: ZodError): string {
	const parts = error.issues.slice(0, MAX_ISSUES).map((issue) => {
		const where = describePath(issue.path);
		// Only a whole body has no path: name what it should have been.
		if (!where && issue.code === "invalid_type") return `the body must be a JSON ${issue.expected}`;
		// Our schema messages already name the field; prefix the path only when it adds the position.
		return where && !issue.message.startsWith(where) ? `${where}: ${issue.message}` : issue.message;
	});
	const more = error.issues.length - MAX_ISSUES;
	return `Invalid request: ${parts.join("; ")}${more > 0 ? `; and ${more} more` : ""}`;
}
