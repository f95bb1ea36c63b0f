import * as z from "zod/mini";
import { asClassic } from "./openapi-meta";
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
	.check(
		z.maxLength(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` }),
		z.refine((value) => value === "" || anEmail.safeParse(value).success, {
			message: "email must be a valid email address (or empty to clear it)",
		}),
	)
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
		.check(
			z.superRefine((value, context) => {
				for (const [broken, message] of rules) if (broken(value)) context.addIssue({ code: "custom", message, input: value });
			}),
		)
		.openapi({ maxLength: LIMITS.nameLength, pattern: withoutCharacters() });
};

/** LearnerSchema: absent or null fields mean "unchanged" in updateInfo; an empty string clears the field. */
export const LearnerSchema = asClassic(
	z
		.object({
			id: PathIdSchema("learner.id"),
			email: z.nullish(optionalEmail),
			firstName: z.nullish(optionalName("firstName")),
			lastName: z.nullish(optionalName("lastName")),
		})
		.openapi("LearnerSchema"),
);

export const EmailSchema = asClassic(
	z
		.pipe(
			z.string().check(z.maxLength(LIMITS.emailLength, { message: `email must be at most ${LIMITS.emailLength} characters` })),
			z.email({ message: "email must be a valid email address" }),
		)
		.openapi({ maxLength: LIMITS.emailLength }),
);
