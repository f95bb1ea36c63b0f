import type { Child, FC } from "hono/jsx";

/**
 * The console's form fields: each shows the value a refused form sent, exactly as typed, and why it was refused,
 * beside itself (its input's aria-describedby names the sentence; aria-invalid marks it), with the API's status when
 * the API refused (data-api-status).
 */

/**
 * A form as it was sent and refused: every field's value, exactly as typed, and what was wrong, field by field
 * (`form` for what concerns no one field), in the console's words.
 */
export interface FormState {
	values: Record<string, string>;
	errors: Record<string, string>;
	/** The API's status when it refused. */
	status?: number | undefined;
}

/** Why a field was refused, beside it (its id is the field's aria-describedby), with the API's status when it refused. */
const FieldError: FC<{ id: string; text?: string | undefined; status?: number | undefined }> = ({ id, text, status }) =>
	text ? (
		<p class="field-error" id={id} data-api-status={status === undefined ? undefined : String(status)}>
			{text}
		</p>
	) : null;

/** What a refused form says about no one field, at its top. */
export const FormError: FC<{ form?: FormState | undefined }> = ({ form }) =>
	form?.errors.form ? (
		<p class="notice error" role="alert" data-api-status={form.status === undefined ? undefined : String(form.status)}>
			{form.errors.form}
		</p>
	) : null;

interface FieldProps {
	id: string;
	name: string;
	label: Child;
	form?: FormState | undefined;
	type?: string;
	value?: string;
	required?: boolean;
	hint?: Child;
	maxLength?: number;
	autocomplete?: string;
	placeholder?: string;
	/** "numeric" for a number typed as text (a refused value is shown back exactly as typed, as no number input can). */
	inputMode?: "numeric";
}

/** The described-by ids of a field: its hint and its error. */
const describedBy = (props: FieldProps, error: string | undefined) =>
	[props.hint ? `${props.id}-hint` : "", error ? `${props.id}-error` : ""].filter(Boolean).join(" ") || undefined;

/** A labelled text input that shows the value a refused form sent, and its refusal beside it. */
export const Field: FC<FieldProps> = (props) => {
	const error = props.form?.errors[props.name];
	return (
		<div class={error ? "field invalid" : "field"}>
			<label for={props.id}>{props.label}</label>
			{props.hint ? (
				<p class="hint" id={`${props.id}-hint`}>
					{props.hint}
				</p>
			) : null}
			<input
				id={props.id}
				name={props.name}
				type={props.type ?? "text"}
				value={props.form?.values[props.name] ?? props.value}
				required={props.required}
				maxLength={props.maxLength}
				inputmode={props.inputMode}
				autocomplete={props.autocomplete}
				placeholder={props.placeholder}
				aria-invalid={error ? "true" : undefined}
				aria-describedby={describedBy(props, error)}
				data-error={error ? props.name : undefined}
			/>
			<FieldError id={`${props.id}-error`} text={error} status={props.form?.status} />
		</div>
	);
};

export const TextArea: FC<FieldProps> = (props) => {
	const error = props.form?.errors[props.name];
	return (
		<div class={error ? "field invalid" : "field"}>
			<label for={props.id}>{props.label}</label>
			{props.hint ? (
				<p class="hint" id={`${props.id}-hint`}>
					{props.hint}
				</p>
			) : null}
			<textarea
				id={props.id}
				name={props.name}
				required={props.required}
				aria-invalid={error ? "true" : undefined}
				aria-describedby={describedBy(props, error)}
				data-error={error ? props.name : undefined}
			>
				{props.form?.values[props.name] ?? props.value ?? ""}
			</textarea>
			<FieldError id={`${props.id}-error`} text={error} status={props.form?.status} />
		</div>
	);
};

export const Select: FC<FieldProps & { options: { value: string; label: string }[] }> = (props) => {
	const error = props.form?.errors[props.name];
	const chosen = props.form?.values[props.name] ?? props.value;
	return (
		<div class={error ? "field invalid" : "field"}>
			<label for={props.id}>{props.label}</label>
			<select
				id={props.id}
				name={props.name}
				required={props.required}
				aria-invalid={error ? "true" : undefined}
				aria-describedby={error ? `${props.id}-error` : undefined}
				data-error={error ? props.name : undefined}
			>
				{props.options.map((option) => (
					<option value={option.value} selected={option.value === chosen}>
						{option.label}
					</option>
				))}
			</select>
			<FieldError id={`${props.id}-error`} text={error} status={props.form?.status} />
		</div>
	);
};

export const Checkbox: FC<{ id: string; name: string; label: Child; form?: FormState | undefined; checked?: boolean }> = (props) => {
	const error = props.form?.errors[props.name];
	const checked = props.form ? props.form.values[props.name] === "true" : props.checked;
	return (
		<div class={error ? "field invalid" : "field"}>
			<label class="inline" for={props.id}>
				<input
					id={props.id}
					type="checkbox"
					name={props.name}
					value="true"
					checked={checked}
					aria-invalid={error ? "true" : undefined}
					aria-describedby={error ? `${props.id}-error` : undefined}
					data-error={error ? props.name : undefined}
				/>{" "}
				{props.label}
			</label>
			<FieldError id={`${props.id}-error`} text={error} status={props.form?.status} />
		</div>
	);
};

