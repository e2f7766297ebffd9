/**
 * Interactive terminal client of the chat API (docs/clients.md).
 *
 *   npm run client -- <endpoint> [--token <jwt> | --user <userId>] [--name <display>] [--room <room>]
 *
 * Reads commands line by line from stdin (a TTY with a prompt, or a pipe), prints one timestamped,
 * tagged line per event on stdout. The protocol and connection policy (pings, reconnection,
 * rejoining rooms) live in clients/shared/session.ts, shared with the web page.
 */
import * as readline from "node:readline";
import WebSocket from "ws";
import { parseCommand, HELP_TEXT, type Command } from "../shared/commands";
import { roomKey, targetOf, type LoggedMessage } from "../shared/messages";
import { ChatSession, type SessionEvent, type SocketFactory } from "../shared/session";
import { EXIT, USAGE, parseArgs, unverifiedClaims, type CliArgs } from "./args";
import { CatchUp } from "./catchUp";
import { formatEvent, formatFrame, line, type FormatContext } from "./format";
import { mintLocalToken } from "./localToken";

/** The Node socket: `ws`, which (unlike a browser) reports the HTTP status of a refused handshake. */
export const nodeSocketFactory: SocketFactory = (url, handlers) => {
  const socket = new WebSocket(url, { handshakeTimeout: 15_000 });
  let handshakeStatus: number | undefined;
  let closed = false;
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    handlers.onClose({ code, reason, ...(handshakeStatus !== undefined ? { handshakeStatus } : {}) });
  };
  socket.on("unexpected-response", (_req, res) => {
    handshakeStatus = res.statusCode;
    res.resume();
    socket.terminate();
  });
  socket.on("open", () => handlers.onOpen());
  socket.on("message", (data, isBinary) => {
    if (!isBinary) handlers.onMessage(data.toString());
  });
  // An 'error' before 'open' (ECONNREFUSED, DNS) is followed by 'close' with 1006.
  socket.on("error", () => undefined);
  socket.on("close", (code, reason) => finish(code, reason.toString()));
  return {
    send: (text) => socket.send(text),
    close: (code, reason) => {
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(code, reason);
    },
  };
};

export interface RunOptions {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream & { isTTY?: boolean };
  readonly errorOutput: NodeJS.WritableStream;
  readonly env: Record<string, string | undefined>;
}

/** Runs the client until /quit, end of input or a fatal error; resolves to the exit code. */
export async function run(argv: readonly string[], io: RunOptions): Promise<number> {
  const parsed = parseArgs(argv, io.env);
  if (!parsed.ok) {
    if (parsed.help) {
      io.output.write(`${parsed.message}\n`);
      return EXIT.ok;
    }
    io.errorOutput.write(`error: ${parsed.message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  return runClient(parsed.args, io);
}

async function runClient(args: CliArgs, io: RunOptions): Promise<number> {
  const tty = io.output.isTTY === true && (io.input as { isTTY?: boolean }).isTTY === true;
  const claims = args.token ? unverifiedClaims(args.token) : {};
  const userId = args.user ?? claims.sub;
  const username = args.name ?? (args.user ? args.user : undefined);

  let exitCode: number = EXIT.ok;
  let finished = false;
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const rl = readline.createInterface({ input: io.input, output: tty ? io.output : undefined, terminal: tty });

  // On a TTY, an incoming line must not mix with what the user is typing: clear, print, redraw.
  const print = (lines: readonly string[]): void => {
    if (lines.length === 0) return;
    if (tty) {
      readline.clearLine(io.output, 0);
      readline.cursorTo(io.output, 0);
    }
    io.output.write(lines.map((l) => `${l}\n`).join(""));
    if (tty && !finished) rl.prompt(true);
  };

  let session: ChatSession;
  const ctx = (): FormatContext => ({
    color: tty && args.color,
    ...(session?.userId ? { selfId: session.userId } : userId ? { selfId: userId } : {}),
    privateTarget: (id) => session?.privateTarget(id),
    message: (id) => session?.messages.get(id),
    unread: (roomId) => session?.unread(roomId),
  });

  /** The message `/edit` or `/delete` names: `^ref`, or else the user's last one. */
  const pick = (ref: number | undefined, verb: string): LoggedMessage | undefined => {
    if (ref !== undefined) {
      const m = session.messages.ref(ref);
      if (!m) print([line("error CLIENT", `no message ^${ref}: name a message by the ^number shown before it`, ctx())]);
      return m;
    }
    const self = session.userId;
    const m = self === undefined ? undefined : session.messages.lastOf(self);
    if (!m) print([line("error CLIENT", `no message of yours to ${verb} yet: /${verb} ^n names one`, ctx())]);
    return m;
  };

  /** The newest message of the current room: what `/react <emoji>` without ^n names. */
  const newestHere = (): LoggedMessage | undefined => {
    const roomId = session.currentRoom;
    const m = roomId === undefined ? undefined : session.messages.newest(roomKey(roomId));
    if (!m) print([line("error CLIENT", "no message here to react to yet: /react ^n <emoji> names one", ctx())]);
    return m;
  };

  const finish = async (code: number): Promise<void> => {
    if (finished) return;
    finished = true;
    exitCode = code;
    rl.close();
    await session.close();
    resolveDone(exitCode);
  };

  const catchUp = new CatchUp();
  /** The last history page printed, for /more and /newer. */
  let lastHistory: { target: { roomId: string } | { withUserId: string }; limit?: number; next?: string; newer?: string } | undefined;
  let lastHistoryLimit: number | undefined;
  /**
   * What the history asked for last shows: the newest messages, or (forward) the ones after the
   * read position or after a page. Only those pages move the read position: an older page (/more)
   * does not say the user saw what came after it.
   */
  let lastHistoryReads = false;

  /**
   * The terminal prints every message of every joined room, so a message printed is read (issue 18),
   * as long as nothing before it is still unread: after `/unread` showed them, or when there were none.
   * The session sends these reads within one budget for all rooms (markRead), so busy rooms do not
   * spend the rate limit the user's own messages need.
   */
  const readPrinted = (roomId: string, messageId: string, own: boolean): void => {
    const state = session.unread(roomId);
    if (!state || (!state.more && state.unread <= (own ? 0 : 1))) session.markRead(roomId, messageId);
  };

  const onEvent = (event: SessionEvent): void => {
    const heldBack = handleCatchUp(event);
    if (!heldBack) print(formatEvent(event, ctx()));
    if (event.type === "frame" && !event.redundant && !heldBack) {
      const f = event.frame;
      if (f.type === "chat") readPrinted(f.roomId, f.messageId, f.userId === session.userId);
      if (f.type === "history" && f.roomId !== undefined && lastHistoryReads && f.messages.length > 0) {
        lastHistoryReads = false;
        session.markRead(f.roomId, f.messages[f.messages.length - 1].messageId);
      }
    }
    if (event.type === "status" && event.status === "open" && tty) rl.setPrompt(`#${session.currentRoom ?? "-"}> `);
    if (event.type === "frame" && (event.frame.type === "joined" || event.frame.type === "left") && tty) {
      rl.setPrompt(`#${session.currentRoom ?? "-"}> `);
    }
    if (event.type === "fatal") {
      const code =
        event.reason === "rejected" || event.reason === "token"
          ? EXIT.rejected
          : event.reason === "gave-up"
            ? EXIT.connectionLost
            : EXIT.unreachable;
      void finish(code);
    }
  };

  /** Catch-up after reconnections (catchUp.ts). Returns true when the event was fully handled here. */
  const handleCatchUp = (event: SessionEvent): boolean => {
    if (event.type === "rejoined") catchUp.expect(event.rooms);
    if (event.type !== "frame") return false;
    const f = event.frame;
    if (f.type === "joined" && catchUp.onJoined(f.roomId)) session.history({ roomId: f.roomId });
    if (f.type === "chat") return !catchUp.onChat(f);
    if (f.type === "history" && !catchUp.isCatchUpReply(f)) {
      const target = f.roomId !== undefined ? { roomId: f.roomId } : { withUserId: f.withUserId ?? "" };
      lastHistory = {
        target,
        ...(lastHistoryLimit !== undefined ? { limit: lastHistoryLimit } : {}),
        ...(f.next ? { next: f.next } : {}),
        ...(f.newer ? { newer: f.newer } : {}),
      };
    }
    if (f.type === "history" && catchUp.isCatchUpReply(f)) {
      const missed = catchUp.missed(f);
      // What was missed is printed now: read, as live messages are.
      const newest = missed[missed.length - 1];
      if (newest && f.roomId !== undefined) readPrinted(f.roomId, newest.messageId, newest.userId === session.userId);
      if (missed.length > 0) {
        print([
          line("info", `#${f.roomId}: ${missed.length} message${missed.length === 1 ? "" : "s"} sent while disconnected`, ctx()),
          ...missed.flatMap((m) =>
            formatFrame(
              {
                type: "chat",
                roomId: f.roomId ?? "",
                messageId: m.messageId,
                userId: m.userId,
                username: m.username,
                message: m.message,
                sentAt: m.sentAt,
              },
              ctx(),
            ),
          ),
        ]);
      }
      return true;
    }
    return false;
  };

  session = new ChatSession({
    endpoint: args.endpoint,
    // A local token is minted afresh for every connection, so a reconnection after the 2-hour cut works.
    token: args.token ? () => args.token as string : () => mintLocalToken(args.endpoint, args.user as string, args.name),
    ...(username ? { username } : {}),
    ...(userId ? { userId } : {}),
    ...(args.room ? { room: args.room } : {}),
    ...(args.pingIntervalMs !== undefined ? { pingIntervalMs: args.pingIntervalMs } : {}),
    socketFactory: nodeSocketFactory,
    onEvent,
  });

  const execute = (command: Command): void => {
    switch (command.kind) {
      case "none":
        return;
      case "invalid":
        print([line("error CLIENT", command.message, ctx())]);
        return;
      case "help":
        print(HELP_TEXT.split("\n"));
        return;
      case "quit":
        void quitWhenSettled();
        return;
      case "chat":
        session.chat(command.message, command.roomId);
        return;
      case "join":
        session.join(command.roomId);
        return;
      case "leave":
        session.leave(command.roomId);
        return;
      case "private":
        session.private(command.toUserId, command.message);
        return;
      case "rooms":
        session.listRooms();
        return;
      case "history": {
        const size = command.limit !== undefined ? { limit: command.limit } : {};
        lastHistoryLimit = command.limit;
        if (command.withUserId) {
          session.history({ withUserId: command.withUserId }, size);
          return;
        }
        const roomId = command.roomId ?? session.currentRoom;
        if (!roomId) print([line("error CLIENT", "you are in no room: /history <room>", ctx())]);
        else {
          lastHistoryReads = true;
          session.history({ roomId }, size);
        }
        return;
      }
      case "unread": {
        const roomId = command.roomId ?? session.currentRoom;
        lastHistoryLimit = undefined;
        if (!roomId) print([line("error CLIENT", "you are in no room: /unread <room>", ctx())]);
        else {
          lastHistoryReads = true;
          session.history({ roomId }, { fromRead: true });
        }
        return;
      }
      case "newer": {
        if (!lastHistory?.newer) {
          print([line("error CLIENT", "nothing newer: /newer follows an /unread that said newer messages exist", ctx())]);
          return;
        }
        lastHistoryReads = "roomId" in lastHistory.target;
        session.history(lastHistory.target, {
          ...(lastHistory.limit !== undefined ? { limit: lastHistory.limit } : {}),
          after: lastHistory.newer,
        });
        return;
      }
      case "react": {
        const m = command.ref !== undefined ? pick(command.ref, "react") : newestHere();
        // The answer (the reaction with its count, or an error such as NOT_FOUND) is printed as it arrives.
        if (m) void session.react(targetOf(m.conversation), m.messageId, command.emoji, command.remove);
        return;
      }
      case "more": {
        lastHistoryReads = false;
        if (!lastHistory?.next) {
          print([line("error CLIENT", "nothing older: /more follows a /history that said older messages exist", ctx())]);
          return;
        }
        session.history(lastHistory.target, {
          ...(lastHistory.limit !== undefined ? { limit: lastHistory.limit } : {}),
          before: lastHistory.next,
        });
        return;
      }
      case "edit": {
        const m = pick(command.ref, "edit");
        // The answer (edited, or an error such as FORBIDDEN or NOT_FOUND) is printed as it arrives.
        if (m) void session.editMessage(targetOf(m.conversation), m.messageId, command.message);
        return;
      }
      case "delete": {
        const m = pick(command.ref, "delete");
        if (m) void session.deleteMessage(targetOf(m.conversation), m.messageId);
        return;
      }
      case "kick": {
        const roomId = command.roomId ?? session.currentRoom;
        if (!roomId) print([line("error CLIENT", "you are in no room: /kick #<room> <userId>", ctx())]);
        else void session.kick(roomId, command.userId, command.minutes);
        return;
      }
      case "who": {
        const roomId = command.roomId ?? session.currentRoom;
        if (!roomId) {
          print([line("error CLIENT", "you are in no room", ctx())]);
          return;
        }
        // Right after `/join <room>` the member list is not known yet: answer once the join is.
        session.afterRoomSettles(roomId, () => {
          if (!session.rooms.includes(roomId)) {
            print([line("error CLIENT", `you are not in #${roomId}`, ctx())]);
            return;
          }
          const members = session.members(roomId);
          print([
            line(
              `who #${roomId}`,
              `${members.length} member${members.length === 1 ? "" : "s"}: ${members.map((m) => (m.username === m.userId ? m.userId : `${m.username} (${m.userId})`)).join(", ") || "nobody"}`,
              ctx(),
            ),
          ]);
        });
        return;
      }
    }
  };

  // /quit and end of input wait (bounded) for replies already asked for, so that a piped script
  // such as `printf '/join x\nhello\n' | npm run client ...` prints its answers before exiting.
  const quitWhenSettled = async (): Promise<void> => {
    if (finished) return;
    if (session.status === "open" || session.status === "connecting" || session.status === "reconnecting") await session.settled(10_000);
    await finish(EXIT.ok);
  };

  rl.on("line", (text) => {
    if (finished) return;
    execute(parseCommand(text));
    // `/join` and `/leave` change the current room at once (the session holds what depends on them).
    if (tty && !finished) {
      rl.setPrompt(`#${session.currentRoom ?? "-"}> `);
      rl.prompt(true);
    }
  });
  rl.on("close", () => void quitWhenSettled());
  // On a terminal, keys typed into a message (not a command) tell the current room "typing"
  // (the session sends at most one frame per 3.5 s per conversation).
  if (tty) {
    io.input.on("keypress", () => {
      const typed = (rl as unknown as { line?: string }).line ?? "";
      const roomId = session.currentRoom;
      if (!finished && roomId !== undefined && typed.trim() !== "" && !typed.startsWith("/")) session.typing({ roomId });
    });
  }
  rl.on("SIGINT", () => void finish(EXIT.ok));

  const shownName = username ?? claims.name;
  print([
    line("info", `${userId ? `user ${userId}` : "token given"}${shownName ? ` as "${shownName}"` : ""}; /help lists the commands`, ctx()),
  ]);
  session.start();
  if (tty) {
    rl.setPrompt(`#${session.currentRoom ?? "-"}> `);
    rl.prompt();
  }
  return done;
}

if (require.main === module) {
  const onSignal = () => process.exit(EXIT.ok);
  process.once("SIGTERM", onSignal);
  run(process.argv.slice(2), { input: process.stdin, output: process.stdout, errorOutput: process.stderr, env: process.env })
    .then((code) => {
      // Flush stdout before exiting (a pipe may still hold the last lines).
      process.stdout.write("", () => process.exit(code));
    })
    .catch((err: unknown) => {
      process.stderr.write(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(EXIT.internal);
    });
}
