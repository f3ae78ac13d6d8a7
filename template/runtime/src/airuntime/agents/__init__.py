"""Tools and bounded agents: a model that calls typed Python functions in a loop bounded in
steps, time, money and errors, with approvals in the review queue and a trace of every run.

Above structured output in the runtime's layers; it uses the resilient layer's public
interface (`ResilientRunner`) only.
"""
