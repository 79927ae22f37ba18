package cli

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify tells systemd the server's state (sd_notify(3)) when systemd
// started it as a Type=notify service, that is when NOTIFY_SOCKET is set;
// otherwise it does nothing. A failure is logged: the server goes on.
func sdNotify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("systemd notification not sent", "state", state, "err", err)
	}
}

// sdReloading is the notification at the start of a reload; systemd wants
// the monotonic clock's time with it (sd_notify(3), RELOADING=1), and
// READY=1 when the reload is over.
func sdReloading() string {
	return daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec()
}
