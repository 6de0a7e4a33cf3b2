"""synthpref: the simulated world ptgen is evaluated in, kept apart from the assessor and the loop.

`users` draws simulated users with hidden tastes, `renderer` paints images of profile terms
procedurally, and `bench` builds the SynthPref benchmark from both. It depends on
`preferthinker` only (vocabulary, profiles, pixel measurements, the benchmark format).
"""
