"""Running a script in this process under the app (`host.ScriptHost`): its output led into
the event log (`capture`, `fdroute`), the terminal it cannot have (`terminal`), a watchdog
over the event loop it shares with the app (`watchdog`, `stall`, `emergency`), signals,
and the keys that stop it."""
