"""Operations: the job queue and worker, webhook delivery, metrics.

Sits beside `service`: it reads the store and calls the wallet's periodic functions, and the API
and CLI call into it. Nothing below it imports it.
"""
