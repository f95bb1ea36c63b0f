import type { Child, FC } from "hono/jsx";

/**
 * The overview's charts (SPEC §10): SVG drawn on the server, styled by the console's stylesheet through classes and
 * sized by presentation attributes (the Content-Security-Policy allows no inline style), scaled to the width of the
 * page by their viewBox, so they read the same at 375 px as at 1280. Each is a figure: the SVG is an image named by
 * its <title> and described by its <desc>, the caption says what it shows, and a table beside it holds every figure
 * drawn (a screen reader's text alternative, and the exact numbers for everyone).
 */

/** The realm's usage as GET /appManagement/usage answers it (the fields the overview draws). */
export interface UsageView {
	generatedDate: string;
	applications: {
		id: string;
		name: string;
		shard: string;
		storedRows: number;
		rowQuota: number;
		writesThisMinute: number;
		writeBudget: number;
		registrations: number;
		learners: number;
	}[];
	jobs: { since: string; hours: { hour: string; completed: number; failed: number }[]; queued: number; running: number };
	webhookDeliveries: { since: string; delivered: number; failed: number; pending: number; noWebhook: number };
	shards: { name: string; region: string; open: boolean; applications: number; storedRows: number; registrations: number; estimatedBytes: number; capacityBytes: number }[];
}

/** The drawing's width, in viewBox units: about the width of a phone's page, so text stays readable at 375 px. */
const WIDTH = 340;
/** How many rows a bar chart draws (the table lists them all). */
const MOST_ROWS = 12;

export const number = (value: number) => value.toLocaleString("en-US");

/** A share as people read it: "12.5 %", "< 0.01 %" for a sliver, "0 %" for nothing. */
export function percent(value: number, of: number): string {
	if (of <= 0 || value <= 0) return "0 %";
	const share = (100 * value) / of;
	if (share < 0.01) return "< 0.01 %";
	return `${share < 10 ? share.toFixed(2) : share.toFixed(1)} %`;
}

/** Bytes in decimal units, as the capacity plan counts them. */
export function bytes(value: number): string {
	const units = ["bytes", "kB", "MB", "GB", "TB"];
	let scaled = value;
	let unit = 0;
	while (scaled >= 1000 && unit < units.length - 1) {
		scaled /= 1000;
		unit++;
	}
	return unit === 0 ? `${value} bytes` : `${scaled.toFixed(scaled < 10 ? 2 : 1)} ${units[unit]}`;
}

const Figure: FC<{ id: string; title: string; caption: Child; table: Child; children: Child }> = ({ id, title, caption, table, children }) => (
	<figure class="chart" id={id} aria-labelledby={`${id}-caption`}>
		<h2 id={`${id}-heading`}>{title}</h2>
		{children}
		<figcaption id={`${id}-caption`}>{caption}</figcaption>
		<details>
			<summary>The figures</summary>
			<div class="table">{table}</div>
		</details>
	</figure>
);

interface Bar {
	label: string;
	value: number;
	of: number;
	/** What the bar says in words beside the label ("12 of 5,000,000"). */
	text: string;
	/** A class of its own (an outcome's colour). */
	tone?: string;
}

/** Horizontal bars, each against its own whole (a quota, a budget, a capacity): a label line and a bar per row. */
const Bars: FC<{ id: string; title: string; description: string; bars: Bar[]; empty: string }> = ({ id, title, description, bars, empty }) => {
	const shown = bars.slice(0, MOST_ROWS);
	const rowHeight = 42;
	const height = Math.max(1, shown.length) * rowHeight + 4;
	return (
		<svg class="chart-svg" viewBox={`0 0 ${WIDTH} ${height}`} width={WIDTH} height={height} role="img" aria-labelledby={`${id}-title ${id}-desc`}>
			<title id={`${id}-title`}>{title}</title>
			<desc id={`${id}-desc`}>{description}</desc>
			{shown.length === 0 ? (
				<text x={0} y={20} class="chart-note">
					{empty}
				</text>
			) : (
				shown.map((bar, i) => {
					const y = i * rowHeight;
					const share = bar.of > 0 ? Math.min(1, bar.value / bar.of) : 0;
					// A sliver of a quota still shows: at least 2 units for anything above zero.
					const filled = bar.value > 0 ? Math.max(2, Math.round(share * WIDTH)) : 0;
					const label = bar.label.length > 28 ? `${bar.label.slice(0, 27)}…` : bar.label;
					return (
						<g>
							<text x={0} y={y + 15} class="chart-label">
								{label}
							</text>
							<text x={WIDTH} y={y + 15} text-anchor="end" class="chart-value">
								{percent(bar.value, bar.of)}
							</text>
							<rect x={0} y={y + 22} width={WIDTH} height={12} rx={3} class="chart-track" />
							<rect x={0} y={y + 22} width={filled} height={12} rx={3} class={`chart-bar ${bar.tone ?? ""}`} />
						</g>
					);
				})
			)}
		</svg>
	);
};

const BarTable: FC<{ heading: string; bars: Bar[] }> = ({ heading, bars }) => (
	<table>
		<thead>
			<tr>
				<th scope="col">{heading}</th>
				<th scope="col">Figure</th>
				<th scope="col">Share</th>
			</tr>
		</thead>
		<tbody>
			{bars.map((bar) => (
				<tr>
					<td data-label={heading}>{bar.label}</td>
					<td data-label="Figure">{bar.text}</td>
					<td data-label="Share">{percent(bar.value, bar.of)}</td>
				</tr>
			))}
		</tbody>
	</table>
);

const byShare = (a: Bar, b: Bar) => b.value / Math.max(1, b.of) - a.value / Math.max(1, a.of) || a.label.localeCompare(b.label);

export const StoredRowsChart: FC<{ usage: UsageView }> = ({ usage }) => {
	const bars = usage.applications
		.map((app) => ({ label: app.name, value: app.storedRows, of: app.rowQuota, text: `${number(app.storedRows)} of ${number(app.rowQuota)} rows` }))
		.sort(byShare);
	const title = "Stored rows against each application's quota";
	return (
		<Figure
			id="chart-quota"
			title={title}
			caption={`Registrations, learner tags and registration tags each application stores, as a share of its quota (APP_ROW_QUOTA). ${
				bars.length > MOST_ROWS ? `The ${MOST_ROWS} fullest of ${bars.length} applications are drawn; the table lists all.` : ""
			}`}
			table={<BarTable heading="Application" bars={bars} />}
		>
			<Bars id="chart-quota-svg" title={title} description={bars.map((bar) => `${bar.label}: ${bar.text}`).join("; ") || "No applications"} bars={bars} empty="No applications yet" />
		</Figure>
	);
};

export const WriteBudgetChart: FC<{ usage: UsageView }> = ({ usage }) => {
	const bars = usage.applications
		.map((app) => ({
			label: app.name,
			value: app.writesThisMinute,
			of: app.writeBudget,
			text: `${number(app.writesThisMinute)} of ${number(app.writeBudget)} rows this minute`,
		}))
		.sort(byShare);
	const title = "Write budget used this minute";
	return (
		<Figure
			id="chart-budget"
			title={title}
			caption="Rows each application's writes touched in the current minute (a batch costs ids × tags), as a share of its budget (APP_WRITE_BUDGET); past it, writes answer 429 until the minute ends."
			table={<BarTable heading="Application" bars={bars} />}
		>
			<Bars id="chart-budget-svg" title={title} description={bars.map((bar) => `${bar.label}: ${bar.text}`).join("; ") || "No applications"} bars={bars} empty="No applications yet" />
		</Figure>
	);
};

const hourOf = (iso: string) => `${iso.slice(11, 13)}:00`;

export const JobTimelineChart: FC<{ usage: UsageView }> = ({ usage }) => {
	const { hours, queued, running } = usage.jobs;
	const height = 170;
	const left = 30;
	const top = 10;
	const plot = { width: WIDTH - left, height: 120 };
	const most = Math.max(1, ...hours.map((hour) => hour.completed + hour.failed));
	const step = plot.width / Math.max(1, hours.length);
	const scale = (count: number) => (count / most) * plot.height;
	const completed = hours.reduce((sum, hour) => sum + hour.completed, 0);
	const failed = hours.reduce((sum, hour) => sum + hour.failed, 0);
	const title = "Jobs finished over the last 24 hours";
	const summary = `${number(completed)} completed and ${number(failed)} failed since ${hourOf(usage.jobs.since)} UTC yesterday; ${number(queued)} queued and ${number(running)} running now.`;
	return (
		<Figure
			id="chart-jobs"
			title={title}
			caption={`Jobs that finished in each hour (UTC), completed in green below, failed in red above; a bulk erasure counts once. ${summary}`}
			table={
				<table>
					<thead>
						<tr>
							<th scope="col">Hour (UTC)</th>
							<th scope="col">Completed</th>
							<th scope="col">Failed</th>
						</tr>
					</thead>
					<tbody>
						{hours.map((hour) => (
							<tr>
								<td data-label="Hour (UTC)">
									<time datetime={hour.hour}>{`${hour.hour.slice(0, 10)} ${hourOf(hour.hour)}`}</time>
								</td>
								<td data-label="Completed">{number(hour.completed)}</td>
								<td data-label="Failed">{number(hour.failed)}</td>
							</tr>
						))}
					</tbody>
				</table>
			}
		>
			<svg class="chart-svg" viewBox={`0 0 ${WIDTH} ${height}`} width={WIDTH} height={height} role="img" aria-labelledby="chart-jobs-title chart-jobs-desc">
				<title id="chart-jobs-title">{title}</title>
				<desc id="chart-jobs-desc">{summary}</desc>
				<line x1={left} y1={top + plot.height} x2={WIDTH} y2={top + plot.height} class="chart-axis" />
				<text x={left - 4} y={top + 10} text-anchor="end" class="chart-tick">
					{number(most)}
				</text>
				<text x={left - 4} y={top + plot.height} text-anchor="end" class="chart-tick">
					0
				</text>
				{hours.map((hour, i) => {
					const x = left + i * step + 1;
					const done = scale(hour.completed);
					const lost = scale(hour.failed);
					return (
						<g>
							{hour.completed > 0 ? <rect x={x} y={top + plot.height - done} width={step - 2} height={done} class="chart-bar ok" /> : null}
							{hour.failed > 0 ? <rect x={x} y={top + plot.height - done - lost} width={step - 2} height={lost} class="chart-bar danger" /> : null}
						</g>
					);
				})}
				{hours.map((hour, i) =>
					i % 6 === 0 ? (
						<text x={left + i * step} y={top + plot.height + 16} text-anchor="start" class="chart-tick">
							{hourOf(hour.hour)}
						</text>
					) : null,
				)}
				<text x={WIDTH} y={top + plot.height + 16} text-anchor="end" class="chart-tick">
					now
				</text>
				<text x={left} y={height - 6} class="chart-tick">
					{`Now: ${number(queued)} queued, ${number(running)} running`}
				</text>
			</svg>
		</Figure>
	);
};

export const WebhookChart: FC<{ usage: UsageView }> = ({ usage }) => {
	const { delivered, failed, pending, noWebhook } = usage.webhookDeliveries;
	const total = delivered + failed + pending + noWebhook;
	const bars: Bar[] = [
		{ label: "Delivered", value: delivered, of: total, text: `${number(delivered)} events`, tone: "ok" },
		{ label: "Still being delivered", value: pending, of: total, text: `${number(pending)} events`, tone: "warn" },
		{ label: "Given up (24 hours of retries)", value: failed, of: total, text: `${number(failed)} events`, tone: "danger" },
		{ label: "No webhook set", value: noWebhook, of: total, text: `${number(noWebhook)} jobs`, tone: "muted-bar" },
	];
	const title = "Webhook deliveries of the last 24 hours";
	return (
		<Figure
			id="chart-webhooks"
			title={title}
			caption={`What became of the events of the ${number(total)} jobs that finished in the last 24 hours.`}
			table={<BarTable heading="Outcome" bars={bars} />}
		>
			<Bars id="chart-webhooks-svg" title={title} description={bars.map((bar) => `${bar.label}: ${bar.text}`).join("; ")} bars={bars} empty="" />
		</Figure>
	);
};

export const ShardFillChart: FC<{ usage: UsageView }> = ({ usage }) => {
	const bars = usage.shards.map((shard) => ({
		label: `${shard.name} (${shard.region}${shard.open ? "" : ", closed"})`,
		value: shard.estimatedBytes,
		of: shard.capacityBytes,
		text: `about ${bytes(shard.estimatedBytes)} of ${bytes(shard.capacityBytes)}; ${number(shard.applications)} applications, ${number(shard.storedRows)} rows`,
	}));
	const title = "Shard fill against the capacity plan";
	return (
		<Figure
			id="chart-shards"
			title={title}
			caption="Each shard's estimated bytes (its registrations and tag rows at the bytes per row the capacity plan measured; jobs and keys not counted) against the plan's figure per shard: 80 % of D1's 10 GB per database."
			table={<BarTable heading="Shard" bars={bars} />}
		>
			<Bars id="chart-shards-svg" title={title} description={bars.map((bar) => `${bar.label}: ${bar.text}`).join("; ")} bars={bars} empty="No shards" />
		</Figure>
	);
};
