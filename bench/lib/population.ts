/**
 * Who is connected during the broadcast and latency cases: rooms of the measured sizes, topped up
 * with rooms of 10 until the total number of connections is reached.
 *
 * Presence is announced per user, not per connection (docs/protocol.md): a user's first connection
 * in a room posts a `joined` frame to every other member. With one user per connection, filling a
 * 1,000-member room would post ~500,000 presence frames (and, with sequential posting at 20 ms a
 * call, take hours), which measures nothing the issue asks about. So rooms larger than 100 are
 * filled with users on `devicesPerUser` connections each (100 users on 10 devices in a 1,000-member
 * room), and each user's first device connects before the others. A broadcast still goes to every
 * member connection, so what is measured (items read, units, @connections calls, delivery) does
 * not depend on this.
 *
 * Handshakes into the same room are made one at a time (rooms fill in parallel). Two `$connect`s
 * racing into one room make the handlers clean up a live connection: the first one's presence
 * post reaches the second while that one is still inside its own `$connect`, API Gateway answers
 * 410 (AWS-FACTS: nothing can be sent to a connection during its `$connect`), and the handler
 * deletes it as stale. The benchmark avoids the race instead of measuring it; it is reported to
 * the handlers' owner.
 */
import type { ClientSpec } from "./clients";

export interface RoomPlan {
  readonly roomId: string;
  readonly members: number;
  readonly devicesPerUser: number;
  /** Whether this is one of the measured rooms (the others only fill the connections table). */
  readonly measured: boolean;
}

export type MemberSpec = Omit<ClientSpec, "token">;

export interface Population {
  readonly rooms: RoomPlan[];
  /** Per room, in connect order: every user's first device, then the other devices. */
  readonly byRoom: MemberSpec[][];
  readonly total: number;
}

export function devicesPerUserFor(members: number, usersPerRoom: number): number {
  return Math.max(1, Math.ceil(members / usersPerRoom));
}

export function planPopulation(
  total: number,
  measuredSizes: readonly number[],
  usersPerRoom = 20,
  fillSize = 10,
  prefix = "bench",
): Population {
  const measured = measuredSizes.reduce((s, n) => s + n, 0);
  if (measured > total) throw new RangeError(`the measured rooms (${measured} members) do not fit in ${total} connections`);
  const rooms: RoomPlan[] = measuredSizes.map((n) => ({
    roomId: `${prefix}-${n}`,
    members: n,
    devicesPerUser: devicesPerUserFor(n, usersPerRoom),
    measured: true,
  }));
  let left = total - measured;
  for (let k = 1; left > 0; k++) {
    const n = Math.min(fillSize, left);
    rooms.push({ roomId: `${prefix}-fill-${k}`, members: n, devicesPerUser: 1, measured: false });
    left -= n;
  }
  const byRoom = rooms.map((room) => {
    const first: MemberSpec[] = [];
    const others: MemberSpec[] = [];
    for (let i = 0; i < room.members; i++) {
      const user = Math.floor(i / room.devicesPerUser);
      const spec = { userId: `${room.roomId}-u${user}`, username: `user ${user} of ${room.roomId}`, roomId: room.roomId };
      (i % room.devicesPerUser === 0 ? first : others).push(spec);
    }
    return [...first, ...others];
  });
  // Largest rooms first: they take longest to fill, one handshake at a time.
  byRoom.sort((a, b) => b.length - a.length);
  return { rooms, byRoom, total };
}
