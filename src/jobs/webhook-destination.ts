/**
 * Where a webhook may point (SPEC §8): `https:` to a public destination. The service POSTs to the URL and
 * POST .../webhook/test answers the status it got, so a URL into the network the service runs in (a cloud metadata
 * endpoint, a database's HTTP port, an admin page on a private address) would make the service a probe of that
 * network. The rule looks at the URL as WHATWG parsing leaves it — IPv4 written as one number, in hex or octal, or
 * with parts left out is already dotted there (`https://2130706433/` is 127.0.0.1), IPv6 is compressed and an
 * embedded IPv4 written in hex — so no other spelling of an address slips past it.
 *
 * What it cannot see: a DNS name that resolves to an internal address. A Worker cannot resolve a name before its
 * fetch does, so only names that by definition resolve inside a network are refused (docs/jobs-and-webhooks.md:
 * Webhooks).
 */

/** The rule in a sentence, for the OpenAPI document. */
export const WEBHOOK_URL_RULE =
	"An https: URL to a public destination. Refused: IP literals in loopback, private, link-local, carrier-grade NAT, " +
	"benchmarking, multicast and reserved IPv4 ranges; the IPv6 unspecified, loopback, unique-local, link-local, " +
	"site-local and multicast ranges, and any IPv6 address carrying a refused IPv4 address (IPv4-mapped, -compatible, " +
	"-translated, NAT64, 6to4, Teredo); names under localhost, local, internal, home.arpa, intranet, private, corp, " +
	"home or lan, and names without a dot. Plain http: only to localhost, 127.0.0.1 or [::1], and only where the " +
	"operator allows local development (WEBHOOK_ALLOW_LOCALHOST); there the local machine may be named over https: " +
	"too. No user name or password. A DNS name is not resolved before sending.";

/** The local machine, as a development webhook names it (url.hostname: IPv6 keeps its brackets). */
const LOCAL_MACHINE = new Set(["localhost", "127.0.0.1", "[::1]"]);

const HTTPS_ONLY =
	"url must use https: (plain http: only to localhost, 127.0.0.1 or [::1], and only where the operator allows local development: WEBHOOK_ALLOW_LOCALHOST)";
const PUBLIC_ONLY = "url must name a public destination: ";

/**
 * Why `text` may not be a webhook's URL, as a message naming `url`, or null when it may. `allowLocalhost`
 * (WEBHOOK_ALLOW_LOCALHOST, src/config.ts) lets it name the local machine, over http: or https:, for local
 * development; nothing else.
 */
export function webhookUrlProblem(text: string, options: { allowLocalhost: boolean }): string | null {
	let url: URL;
	try {
		url = new URL(text);
	} catch {
		return "url must be an absolute URL (https://...)";
	}
	const local = options.allowLocalhost && LOCAL_MACHINE.has(url.hostname);
	if (url.protocol !== "https:" && !(url.protocol === "http:" && local)) return HTTPS_ONLY;
	if (url.username || url.password) return "url must not carry a user name or password: authenticate deliveries by their signature";
	if (local) return null;
	const problem = hostProblem(url.hostname);
	return problem === null ? null : `${PUBLIC_ONLY}${problem}`;
}

/** Why a URL's host (url.hostname) is not a public destination, or null. */
function hostProblem(host: string): string | null {
	if (host.startsWith("[")) return ipv6Problem(host);
	const ipv4 = parseIpv4(host);
	if (ipv4 !== null) {
		const range = ipv4Range(ipv4);
		return range ? `${host} is ${range.label} (${range.cidr})` : null;
	}
	return nameProblem(host);
}

// ---- IPv4 ----

interface Range {
	cidr: string;
	label: string;
}

/** IPv4 ranges that are not a public destination (IANA special-purpose registry, RFC 6890), first match wins. */
const IPV4_NOT_PUBLIC: Range[] = [
	{ cidr: "0.0.0.0/8", label: "an unspecified (this-network) address" },
	{ cidr: "10.0.0.0/8", label: "a private address" },
	{ cidr: "100.64.0.0/10", label: "a carrier-grade NAT address" },
	{ cidr: "127.0.0.0/8", label: "a loopback address" },
	// Where cloud metadata services answer (169.254.169.254).
	{ cidr: "169.254.0.0/16", label: "a link-local address" },
	{ cidr: "172.16.0.0/12", label: "a private address" },
	{ cidr: "192.0.0.0/24", label: "an IETF protocol assignment" },
	{ cidr: "192.168.0.0/16", label: "a private address" },
	{ cidr: "198.18.0.0/15", label: "a benchmarking address" },
	{ cidr: "224.0.0.0/4", label: "a multicast address" },
	{ cidr: "255.255.255.255/32", label: "the broadcast address" },
	{ cidr: "240.0.0.0/4", label: "a reserved address" },
];

/** Dotted IPv4 as a 32-bit number, or null when `text` is not one (WHATWG leaves IPv4 hosts dotted, decimal). */
function parseIpv4(text: string): number | null {
	const parts = text.split(".");
	if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return null;
	return parts.reduce((address, part) => address * 256 + Number(part), 0);
}

const formatIpv4 = (address: number) => [24, 16, 8, 0].map((shift) => (address >>> shift) & 255).join(".");

/** Whether a 32-bit address is inside `cidr`. */
function inIpv4Range(address: number, cidr: string): boolean {
	const [base = "", bits = "32"] = cidr.split("/");
	const size = 2 ** (32 - Number(bits));
	const start = parseIpv4(base) ?? 0;
	return address >= start && address < start + size;
}

const ipv4Range = (address: number): Range | undefined => IPV4_NOT_PUBLIC.find((range) => inIpv4Range(address, range.cidr));

// ---- IPv6 ----

/** An IPv6 range, as its first groups (16 bits each) and a prefix length. */
interface Ipv6Range extends Range {
	prefix: number[];
	bits: number;
}

/** IPv6 ranges that are not a public destination, whatever they carry. */
const IPV6_NOT_PUBLIC: Ipv6Range[] = [
	{ prefix: [0, 0, 0, 0, 0, 0, 0, 0], bits: 128, cidr: "::/128", label: "the unspecified address" },
	{ prefix: [0, 0, 0, 0, 0, 0, 0, 1], bits: 128, cidr: "::1/128", label: "the loopback address" },
	// RFC 8215: NAT64 inside one network; where its IPv4 address sits depends on the network's own prefix length.
	{ prefix: [0x64, 0xff9b, 1], bits: 48, cidr: "64:ff9b:1::/48", label: "a local-use NAT64 address" },
	{ prefix: [0xfc00], bits: 7, cidr: "fc00::/7", label: "a unique local address" },
	{ prefix: [0xfe80], bits: 10, cidr: "fe80::/10", label: "a link-local address" },
	// Deprecated (RFC 3879), but still the old private range.
	{ prefix: [0xfec0], bits: 10, cidr: "fec0::/10", label: "a site-local address" },
	{ prefix: [0xff00], bits: 8, cidr: "ff00::/8", label: "a multicast address" },
];

/** A 32-bit address from two 16-bit groups. */
const ipv4Of = (high: number, low: number) => ((high << 16) | low) >>> 0;

/**
 * The IPv4 addresses an IPv6 address carries, and how: a packet to it reaches that IPv4 address (through the
 * host's own stack, a translator or a relay), so the IPv4 rule applies to each.
 */
function embeddedIpv4(groups: number[]): { how: string; address: number }[] {
	const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
	const last = ipv4Of(g6, g7);
	const zeros = (...values: number[]) => values.every((value) => value === 0);
	if (zeros(g0, g1, g2, g3, g4) && g5 === 0xffff) return [{ how: "IPv4-mapped", address: last }];
	if (zeros(g0, g1, g2, g3, g4, g5)) return [{ how: "IPv4-compatible", address: last }];
	if (zeros(g0, g1, g2, g3, g5) && g4 === 0xffff) return [{ how: "IPv4-translated", address: last }];
	if (g0 === 0x64 && g1 === 0xff9b && zeros(g2, g3, g4, g5)) return [{ how: "NAT64", address: last }];
	if (g0 === 0x2002) return [{ how: "6to4", address: ipv4Of(g1, g2) }];
	// RFC 4380: the Teredo server's address, then the client's, stored inverted.
	if (g0 === 0x2001 && g1 === 0) {
		return [
			{ how: "Teredo server", address: ipv4Of(g2, g3) },
			{ how: "Teredo client", address: ~last >>> 0 },
		];
	}
	return [];
}

/** The 8 groups of an IPv6 address as url.hostname writes it (bracketed, compressed), or null. */
function parseIpv6(host: string): number[] | null {
	const text = host.slice(1, -1);
	const halves = text.split("::");
	if (halves.length > 2) return null;
	const groupsOf = (half: string | undefined) => (half ? half.split(":") : []);
	const head = groupsOf(halves[0]);
	const tail = groupsOf(halves[1]);
	// A dotted IPv4 tail is two groups (WHATWG writes it in hex, but an address may still be given this way).
	const last = tail.length > 0 ? tail : head;
	const dotted = last.length > 0 ? parseIpv4(last[last.length - 1] ?? "") : null;
	if (dotted !== null) last.splice(-1, 1, ((dotted >>> 16) & 0xffff).toString(16), (dotted & 0xffff).toString(16));
	const missing = 8 - head.length - tail.length;
	if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
	const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill("0"), ...tail];
	if (!groups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))) return null;
	return groups.map((group) => Number.parseInt(group, 16));
}

/** Whether the address's first `bits` bits are the range's. */
function inIpv6Range(groups: number[], range: Ipv6Range): boolean {
	for (let bit = 0; bit < range.bits; bit += 16) {
		const take = Math.min(16, range.bits - bit);
		const mask = (0xffff << (16 - take)) & 0xffff;
		const index = bit / 16;
		if (((groups[index] ?? 0) & mask) !== ((range.prefix[index] ?? 0) & mask)) return false;
	}
	return true;
}

function ipv6Problem(host: string): string | null {
	const groups = parseIpv6(host);
	// WHATWG parsing has already refused malformed IPv6; anything it let through that this cannot read is refused.
	if (!groups) return `${host} is not an IPv6 address this service can check`;
	const own = IPV6_NOT_PUBLIC.find((range) => inIpv6Range(groups, range));
	if (own) return `${host} is ${own.label} (${own.cidr})`;
	for (const { how, address } of embeddedIpv4(groups)) {
		const range = ipv4Range(address);
		if (range) return `${host} embeds ${formatIpv4(address)} (${how}), ${range.label} (${range.cidr})`;
	}
	return null;
}

// ---- Names ----

/**
 * Names (and every name under them) that resolve only on the machine or inside a network, never to a public
 * destination: localhost (RFC 6761), local (RFC 6762, multicast DNS), internal (reserved by ICANN in 2024 for
 * private use; cloud metadata services answer at metadata.google.internal and the like), home.arpa (RFC 8375), and
 * the top-level names RFC 6762 (Appendix G) lists as used on private networks, none of them delegated in the public
 * DNS. .test, .example and .invalid (RFC 2606) are left alone: they do not resolve anywhere by default.
 */
const PRIVATE_NAMES = ["localhost", "local", "internal", "home.arpa", "intranet", "private", "corp", "home", "lan"];

function nameProblem(host: string): string | null {
	// A trailing dot is the same name, fully qualified ("localhost." is localhost).
	const name = host.replace(/\.+$/, "");
	if (name === "") return "its host is empty";
	const under = PRIVATE_NAMES.find((suffix) => name === suffix || name.endsWith(`.${suffix}`));
	if (under) {
		const pattern = name === under ? under : `*.${under}`;
		return `${host} is a local or private-use name (${pattern}), which resolves only inside a network`;
	}
	// A name without a dot is looked up through the resolver's search domains: inside the network, never public.
	if (!name.includes(".")) return `${host} has no dot: a single-label name resolves only inside a network; give the receiver's full public name`;
	return null;
}
