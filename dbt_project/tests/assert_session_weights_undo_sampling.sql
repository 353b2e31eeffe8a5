-- A crashed session stands for itself, any other stored session for 1 / sample_rate sessions.
select session_id, status, sample_rate, sample_weight
from {{ ref('fct_sessions') }}
where sample_rate <= 0 or sample_rate > 1
   or sample_weight <> if(status = 'crashed', 1.0, 1.0 / sample_rate)
