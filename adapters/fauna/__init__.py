"""The event store on Fauna, over FQL v4 with the `faunadb` driver: `store.FaunaEventStore`.

Modules: `driver` (the one import of faunadb), `connection` (endpoint, secret, threads, error mapping), `schema`
(collection and indexes), `queries` (the FQL), `documents` (events to and from Fauna documents),
`inbox` (the durable update inbox), `ledger` (the usage ledger's projection), `lease` (the poller lease), `store`.
"""
