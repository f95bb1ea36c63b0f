import * as z from "zod";
import "./openapi-meta";
import { LIMITS } from "../limits";
import { CONTROL_CHARACTERS, PathIdSchema, codePoints, isWellFormed, notWellFormed, withoutCharacters } from "./text";

/**
 * The learner as SCORM Cloud's LearnerSchema describes it, and an email on its own. Apart from src/schemas/text.ts
 * because the learner tag routes, the busiest, never read a learner's details: their isolates need not build these
 * (SPEC §6: cold start).
 */

const anEmail = z.email();

const optionalEmail = z
	.string({ error: "email must be a string" })
	.max(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })
	.refine((value) => value === "" || anEmail.safeParse(value).success, {
		message: "email must be a valid email address (or empty to clear it)",
	})
	.openapi({ maxLength: LIMITS.emailLength, description: "A valid address, or empty to clear it" });

/** A first or last name: at most LIMITS.nameLength characters, no control characters; empty clears it. */
const optionalName = (label: string) => {
	const rules: [broken: (value: string) => boolean, message: string][] = [
		[(value) => codePoints(value) > LIMITS.nameLength, `${label} must be at most ${LIMITS.nameLength} characters`],
		[(value) => CONTROL_CHARACTERS.test(value), `${label} must not contain control characters`],
		[(value) => !isWellFormed(value), notWellFormed(label)],
	];
	return z
		.string({ error: `${label} must be a string` })
		.superRefine((value, context) => {
			for (const [broken, message] of rules) if (broken(value)) context.addIssue({ code: "custom", message, input: value });
		})
		.openapi({ maxLength: LIMITS.nameLength, pattern: withoutCharacters() });
};

/** LearnerSchema: absent or null fields mean "unchanged" in updateInfo; an empty string clears the field. */
export const LearnerSchema = z
	.object({
		id: PathIdSchema("learner.id"),
		email: optionalEmail.nullish(),
		firstName: optionalName("firstName").nullish(),
		lastName: optionalName("lastName").nullish(),
	})
	.openapi("LearnerSchema");

export const EmailSchema = z
	.string()
	.max(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })
	.pipe(z.email({ message: "email must be a valid email address" }))
	.openapi({ maxLength: LIMITS.emailLength });
