/**
 * Virtio device ids and feature bit names, written from the virtio 1.x specification and the
 * Linux uapi headers (virtio_ids.h, virtio_config.h, virtio_ring.h, virtio_blk.h, virtio_net.h,
 * virtio_balloon.h). Bit numbers are positions in the 64-bit (now 128-bit) feature word, which
 * sysfs prints as a string of '0'/'1' with bit 0 first.
 */

/** Device ids (virtio spec "Device Types"). */
export const VIRTIO_DEVICE_TYPES: Readonly<Record<number, string>> = {
  1: 'net', 2: 'block', 3: 'console', 4: 'entropy', 5: 'balloon', 8: 'scsi', 9: '9p', 16: 'gpu',
  18: 'input', 19: 'vsock', 20: 'crypto', 23: 'iommu', 24: 'mem', 26: 'fs', 27: 'pmem', 41: 'gpio',
};

/** Device-independent bits (24–41), the same for every device type. */
export const VIRTIO_TRANSPORT_FEATURES: Readonly<Record<number, string>> = {
  24: 'VIRTIO_F_NOTIFY_ON_EMPTY',
  27: 'VIRTIO_F_ANY_LAYOUT',
  28: 'VIRTIO_RING_F_INDIRECT_DESC',
  29: 'VIRTIO_RING_F_EVENT_IDX',
  30: 'VIRTIO_F_BAD_FEATURE',
  32: 'VIRTIO_F_VERSION_1',
  33: 'VIRTIO_F_ACCESS_PLATFORM',
  34: 'VIRTIO_F_RING_PACKED',
  35: 'VIRTIO_F_IN_ORDER',
  36: 'VIRTIO_F_ORDER_PLATFORM',
  37: 'VIRTIO_F_SR_IOV',
  38: 'VIRTIO_F_NOTIFICATION_DATA',
  39: 'VIRTIO_F_NOTIF_CONFIG_DATA',
  40: 'VIRTIO_F_RING_RESET',
  41: 'VIRTIO_F_ADMIN_VQ',
};

/** virtio-blk bits. Bit 9 is the volatile write cache: VIRTIO_BLK_F_FLUSH, legacy name VIRTIO_BLK_F_WCE. */
export const VIRTIO_BLK_FEATURES: Readonly<Record<number, string>> = {
  0: 'VIRTIO_BLK_F_BARRIER',
  1: 'VIRTIO_BLK_F_SIZE_MAX',
  2: 'VIRTIO_BLK_F_SEG_MAX',
  4: 'VIRTIO_BLK_F_GEOMETRY',
  5: 'VIRTIO_BLK_F_RO',
  6: 'VIRTIO_BLK_F_BLK_SIZE',
  7: 'VIRTIO_BLK_F_SCSI',
  9: 'VIRTIO_BLK_F_WCE',
  10: 'VIRTIO_BLK_F_TOPOLOGY',
  11: 'VIRTIO_BLK_F_CONFIG_WCE',
  12: 'VIRTIO_BLK_F_MQ',
  13: 'VIRTIO_BLK_F_DISCARD',
  14: 'VIRTIO_BLK_F_WRITE_ZEROES',
  15: 'VIRTIO_BLK_F_LIFETIME',
  16: 'VIRTIO_BLK_F_SECURE_ERASE',
  17: 'VIRTIO_BLK_F_ZONED',
};

/** What some virtio-blk bits mean for how writes behave, for the report. */
export const VIRTIO_BLK_NOTES: Readonly<Record<number, string>> = {
  9: 'write cache: the device has a volatile cache and honours flush (VIRTIO_BLK_F_FLUSH)',
  11: 'the guest can switch the cache between write back and write through (cache_type is writable)',
  5: 'read-only',
};

/** virtio-net bits. */
export const VIRTIO_NET_FEATURES: Readonly<Record<number, string>> = {
  0: 'VIRTIO_NET_F_CSUM', 1: 'VIRTIO_NET_F_GUEST_CSUM', 2: 'VIRTIO_NET_F_CTRL_GUEST_OFFLOADS', 3: 'VIRTIO_NET_F_MTU',
  5: 'VIRTIO_NET_F_MAC', 6: 'VIRTIO_NET_F_GSO', 7: 'VIRTIO_NET_F_GUEST_TSO4', 8: 'VIRTIO_NET_F_GUEST_TSO6',
  9: 'VIRTIO_NET_F_GUEST_ECN', 10: 'VIRTIO_NET_F_GUEST_UFO', 11: 'VIRTIO_NET_F_HOST_TSO4', 12: 'VIRTIO_NET_F_HOST_TSO6',
  13: 'VIRTIO_NET_F_HOST_ECN', 14: 'VIRTIO_NET_F_HOST_UFO', 15: 'VIRTIO_NET_F_MRG_RXBUF', 16: 'VIRTIO_NET_F_STATUS',
  17: 'VIRTIO_NET_F_CTRL_VQ', 18: 'VIRTIO_NET_F_CTRL_RX', 19: 'VIRTIO_NET_F_CTRL_VLAN', 20: 'VIRTIO_NET_F_CTRL_RX_EXTRA',
  21: 'VIRTIO_NET_F_GUEST_ANNOUNCE', 22: 'VIRTIO_NET_F_MQ', 23: 'VIRTIO_NET_F_CTRL_MAC_ADDR',
};

/** virtio-balloon bits. */
export const VIRTIO_BALLOON_FEATURES: Readonly<Record<number, string>> = {
  0: 'VIRTIO_BALLOON_F_MUST_TELL_HOST', 1: 'VIRTIO_BALLOON_F_STATS_VQ', 2: 'VIRTIO_BALLOON_F_DEFLATE_ON_OOM',
  3: 'VIRTIO_BALLOON_F_FREE_PAGE_HINT', 4: 'VIRTIO_BALLOON_F_PAGE_POISON', 5: 'VIRTIO_BALLOON_F_REPORTING',
};

const BY_TYPE: Readonly<Record<number, Readonly<Record<number, string>>>> = {
  1: VIRTIO_NET_FEATURES,
  2: VIRTIO_BLK_FEATURES,
  5: VIRTIO_BALLOON_FEATURES,
};

/** One set feature bit and its name (undefined when kvmtrace has no name for it). */
export interface FeatureBit {
  bit: number;
  name?: string;
}

/** Parses sysfs `features` ('0'/'1' per bit, bit 0 first) into the numbers of the set bits; undefined when malformed. */
export function parseFeatureBits(text: string): number[] | undefined {
  const t = text.trim();
  if (!/^[01]+$/.test(t)) return undefined;
  const out: number[] = [];
  for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) === 49) out.push(i);
  return out;
}

/** Names the set bits of a device of type `deviceId`: device-specific bits below 24 and above 41, transport bits between. */
export function nameFeatures(deviceId: number, bits: number[]): FeatureBit[] {
  const dev = BY_TYPE[deviceId] ?? {};
  return bits.map((bit) => ({ bit, name: (bit >= 24 && bit <= 41 ? VIRTIO_TRANSPORT_FEATURES[bit] : dev[bit]) }));
}
